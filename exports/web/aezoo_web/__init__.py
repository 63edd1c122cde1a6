"""aezoo's browser page for an exported decoder: static files that ``aezoo serve`` serves.

A data-only package: ``index.html``, ``app.js``, ``style.css`` and ``favicon.svg`` are its package
data, so an installed wheel has the page; in a clone it lives in ``exports/web/aezoo_web/``, beside
the npm project (``exports/web/package.json``) that pins onnxruntime-web. The list of files served
is ``aezoo.serve.PAGE_FILES``.
"""
