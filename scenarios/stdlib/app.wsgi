# A pure-Python app that uses standard-library C modules (decimal, hashlib, json): it must stay
# clean wherever CPython itself survives the reload, so when it does not, the interpreter is to
# blame and the cell is reported broken rather than any scenario.
import decimal
import hashlib
import json


def application(environ, start_response):
    total = decimal.Decimal("0.1") * 3
    digest = hashlib.sha256(b"mod_wsgi").hexdigest()[:12]
    body = json.dumps({"total": str(total), "digest": digest}, sort_keys=True) + "\n"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode("utf-8")]
