"""What the vårdsamordnare's pages share (the routes are in adapter/api/routes/): the templates
and their filters (render.py), the page session, its audit and error pages (session.py), and
the wiring into the app: static files, error handlers (install.py)."""
