"""iSAMS simulator: generated school (school.py) in one store (store.py), shown as iSAMS shows it
(views.py) by the REST API (app.py) behind its gates (gate.py), steered by the control API
(control.py); and a webhook emitter (emitter.py) over the same store.
"""
