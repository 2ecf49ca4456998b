"""iSAMS simulator: generated school (school.py), REST API (app.py), webhook emitter."""
