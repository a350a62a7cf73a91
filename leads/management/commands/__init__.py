"""`manage.py` commands of the leads app."""
