"""Identity threat detection: a normalized identity-event view over the identity sources,
per-user baselines, credential / MFA / travel / privilege detections, cross-provider
correlation into kill chains, and a decaying risk score per identity."""
