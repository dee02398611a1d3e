"""One module per router; each defines ``router`` (an ``APIRouter``) and is found by name."""
