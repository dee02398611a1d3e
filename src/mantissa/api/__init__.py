"""The HTTP API (FastAPI) and what it needs: auth, errors, routers, background services.

Routes only parse input and render output; the work happens in the services they call
(engines, alerts, detect, ask ...). :func:`mantissa.api.app.create_app` builds the app.
"""
