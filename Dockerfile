# Mantissa Log: one image for `mantissa serve` (API, console, scheduler) and ingest workers.
#   docker build -t mantissa-log .
#   docker run -p 8080:8080 -v $PWD/mantissa.yaml:/etc/mantissa/mantissa.yaml \
#     -e AWS_REGION=us-east-1 mantissa-log serve --host 0.0.0.0
FROM python:3.11-slim-bookworm

# Java only when the image runs the Spark engine in local mode: --build-arg WITH_JAVA=1
ARG WITH_JAVA=0
ARG EXTRAS=postgres,aws,gcp,azure
RUN if [ "$WITH_JAVA" = "1" ]; then \
      apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
      && rm -rf /var/lib/apt/lists/*; \
    fi

RUN useradd --system --create-home --home-dir /var/lib/mantissa mantissa
WORKDIR /opt/mantissa
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[${EXTRAS}]" \
    && if [ "$WITH_JAVA" = "1" ]; then pip install --no-cache-dir ".[spark]"; fi

USER mantissa
ENV MANTISSA_HOME=/var/lib/mantissa
VOLUME ["/var/lib/mantissa"]
EXPOSE 8080
ENTRYPOINT ["mantissa", "--config", "/etc/mantissa/mantissa.yaml"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
