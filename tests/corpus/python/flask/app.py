"""A Flask app served by werkzeug's server on $PORT; its answer says whether markupsafe's C
speedups loaded (they need libpthread.so.0, which the interpreter itself does not)."""

import os

import markupsafe
from flask import Flask, jsonify, render_template_string

app = Flask(__name__)


@app.get("/")
def index():
    greeting = render_template_string("Hello {{ who }}!", who="<corpus>")
    speedups = markupsafe._escape_inner.__module__ == "markupsafe._speedups"
    return jsonify(framework="flask", greeting=greeting, speedups=speedups)


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))
