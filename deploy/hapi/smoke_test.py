#!/usr/bin/env python3
"""Smoke test of a running HAPI FHIR server for what sip-fhir relies on. Standard library only.

    python3 deploy/hapi/smoke_test.py [BASE_URL]     (default http://localhost:$HAPI_PORT/fhir)

Every run uses fresh identifiers, so it can run repeatedly against the same database.
Prints one line per check and ends with "N passed, M failed"; exit 1 if any check failed.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

BASE = (
    sys.argv[1]
    if len(sys.argv) > 1
    else f"http://localhost:{os.environ.get('HAPI_PORT', '8080')}/fhir"
).rstrip("/")
RUN = uuid.uuid4().hex[:8]
PNR = "http://electronichealth.se/identifier/personnummer"
FHIR_JSON = "application/fhir+json"
results: list[tuple[bool, str]] = []


def call(method, path, body=None, headers=None, form=None):
    """(status, headers, parsed JSON or None). `path` is relative to BASE unless absolute."""
    url = path if path.startswith("http") else f"{BASE}/{path.lstrip('/')}"
    hdrs = {"Accept": FHIR_JSON, **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = FHIR_JSON
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - checked above
            raw, status, rh = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, rh = err.read(), err.code, err.headers
    return status, rh, (json.loads(raw) if raw.strip() else None)


def check(ok: bool, what: str, detail: object = "") -> bool:
    results.append((ok, what))
    print(
        f"{'PASS' if ok else 'FAIL'}  {what}" + (f"  [{detail}]" if detail != "" else ""),
        flush=True,
    )
    return ok


def q(system: str, value: str) -> str:
    return urllib.parse.quote(f"{system}|{value}", safe=":/")


def patient(value: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": PNR, "value": value}], **extra}


def errors(outcome: dict) -> list[str]:
    return [
        i.get("diagnostics", "")
        for i in outcome.get("issue", [])
        if i["severity"] in ("error", "fatal")
    ]


def main() -> None:
    status, _, cs = call("GET", "metadata")
    check(
        status == 200 and cs["fhirVersion"] == "4.0.1", "GET /metadata", cs and cs.get("software")
    )

    # create / read / vread
    p1 = f"19{RUN[:6]}01"
    status, h, body = call("POST", "Patient", patient(p1, name=[{"family": "Smoke"}]))
    pid = body["id"] if body else None
    check(status == 201 and "Location" in h, "create -> 201 + Location", h.get("Location"))
    status, h, _ = call("GET", f"Patient/{pid}")
    check(status == 200 and h.get("ETag") == 'W/"1"', "read -> 200 + ETag", h.get("ETag"))
    status, _, _ = call("GET", f"Patient/{pid}/_history/1")
    check(status == 200, "vread -> 200")

    # conditional create
    status, h, _ = call("POST", "Patient", patient(p1), {"If-None-Exist": f"identifier={PNR}|{p1}"})
    check(
        status == 200 and f"Patient/{pid}/" in h.get("Location", ""),
        "conditional create, match -> 200, same id",
        status,
    )
    p2 = f"19{RUN[:6]}02"
    status, _, _ = call("POST", "Patient", patient(p2), {"If-None-Exist": f"identifier={PNR}|{p2}"})
    check(status == 201, "conditional create, no match -> 201", status)

    # conditional update (identifier=system|value, '|' unencoded in the URL as clients send it)
    url = f"Patient?identifier={PNR}|{p1}"
    status, h, body = call(
        "PUT", url, patient(p1, name=[{"family": "Smoke", "given": ["Updated"]}])
    )
    check(
        status == 200 and body["id"] == pid and h.get("ETag") == 'W/"2"',
        "conditional update, match -> 200, v2",
        status,
    )
    status, h, _ = call("PUT", url, patient(p1, name=[{"family": "Smoke", "given": ["Updated"]}]))
    check(
        status == 200 and h.get("ETag") == 'W/"2"',
        "conditional update, same content -> no new version",
        h.get("ETag"),
    )
    p3 = f"19{RUN[:6]}03"
    status, h, _ = call("PUT", f"Patient?identifier={q(PNR, p3)}", patient(p3))
    check(
        status == 201,
        "conditional update, no match -> 201 (Content-Location)",
        h.get("Content-Location"),
    )
    dup = f"dup-{RUN}"
    for _ in range(2):
        call(
            "POST",
            "Patient",
            {"resourceType": "Patient", "identifier": [{"system": "urn:smoke", "value": dup}]},
        )
    status, _, body = call(
        "PUT",
        f"Patient?identifier=urn:smoke|{dup}",
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:smoke", "value": dup}],
            "gender": "other",
        },
    )
    check(status == 412, "conditional update, 2 matches -> 412", errors(body or {})[:1])
    status, _, body = call(
        "POST",
        "Patient",
        {"resourceType": "Patient"},
        {"If-None-Exist": f"identifier=urn:smoke|{dup}"},
    )
    check(status == 412, "conditional create, 2 matches -> 412", status)
    status, _, body = call(
        "PUT", f"Patient/{pid}", {**patient(p1), "id": pid, "gender": "male"}, {"If-Match": 'W/"1"'}
    )
    check(status == 409, "update with stale If-Match -> 409", errors(body or {})[:1])

    # concurrent conditional creates of one identifier: one resource, the others 409 (retryable)
    race = f"race-{RUN}"
    statuses: list[int] = []
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:smoke", "value": race}]}
    workers = [
        threading.Thread(
            target=lambda: statuses.append(
                call("POST", "Patient", body, {"If-None-Exist": f"identifier=urn:smoke|{race}"})[0]
            )
        )
        for _ in range(6)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stored = call("GET", f"Patient?identifier=urn:smoke|{race}&_total=accurate")[2].get("total")
    check(
        stored == 1 and set(statuses) <= {200, 201, 409},
        "6 concurrent conditional creates -> 1 stored",
        f"statuses {sorted(statuses)}",
    )

    # transaction with conditional references
    p4, cp, task = f"19{RUN[:6]}04", f"cp-{RUN}", f"task-{RUN}"
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": patient(p4, birthDate="1944-04-04"),
                "request": {"method": "PUT", "url": f"Patient?identifier={PNR}|{p4}"},
            },
            {
                "resource": {
                    "resourceType": "CarePlan",
                    "identifier": [{"system": "urn:smoke", "value": cp}],
                    "status": "active",
                    "intent": "plan",
                    "subject": {"reference": f"Patient?identifier={PNR}|{p4}"},
                },
                "request": {"method": "PUT", "url": f"CarePlan?identifier=urn:smoke|{cp}"},
            },
            {
                "resource": {
                    "resourceType": "Task",
                    "identifier": [{"system": "urn:smoke", "value": task}],
                    "status": "requested",
                    "intent": "order",
                    "for": {"reference": "urn:uuid:placeholder"},
                },
                "request": {
                    "method": "POST",
                    "url": "Task",
                    "ifNoneExist": f"identifier=urn:smoke|{task}",
                },
            },
        ],
    }
    tx["entry"][2]["resource"]["for"]["reference"] = tx["entry"][0]["fullUrl"]
    status, _, body = call("POST", "", tx)
    first = [e["response"] for e in body.get("entry", [])] if status == 200 else body
    ok = status == 200 and [r["status"][:3] for r in first] == ["201", "201", "201"]
    check(
        ok,
        "transaction with conditional references -> 201 x3",
        [r.get("location") for r in first] if ok else first,
    )
    _, _, found = call("GET", f"CarePlan?identifier=urn:smoke|{cp}")
    subject = found["entry"][0]["resource"]["subject"]["reference"] if found.get("entry") else None
    check(
        subject == first[0]["location"].split("/_history")[0] if ok else False,
        "conditional reference resolved",
        subject,
    )
    status, _, body = call("POST", "", tx)
    again = [e["response"] for e in body.get("entry", [])] if status == 200 else body
    check(
        status == 200
        and [r["status"][:3] for r in again] == ["200"] * 3
        and [r["location"] for r in again] == [r["location"] for r in first],
        "same transaction again -> 200 x3, same ids",
    )

    # paging
    code = f"pg-{RUN}"
    obs = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "urn:smoke", "code": code}]},
                "valueInteger": i,
            },
            "request": {"method": "POST", "url": "Observation"},
        }
        for i in range(25)
    ]
    call("POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": obs})
    seen, pages, link = 0, 0, f"Observation?code=urn:smoke|{code}&_count=10"
    while link and pages < 10:
        status, _, page = call("GET", link)
        seen += len(page.get("entry", []))
        pages += 1
        link = next((lk["url"] for lk in page.get("link", []) if lk["relation"] == "next"), None)
    check(
        seen == 25 and pages == 3,
        "search paging via next links (25 in pages of 10)",
        f"{seen} in {pages} pages",
    )
    status, _, page = call(
        "POST", "Observation/_search", form={"code": f"urn:smoke|{code}", "_count": "5"}
    )
    has_next = any(lk["relation"] == "next" for lk in page.get("link", []))
    check(
        status == 200 and len(page.get("entry", [])) == 5 and has_next,
        "POST _search with form body",
        status,
    )

    # $validate against a profile POSTed to the server
    sd_url = f"http://sipfhir.se/fhir/StructureDefinition/SmokePatient-{RUN}"
    sd = {
        "resourceType": "StructureDefinition",
        "url": sd_url,
        "name": "SmokePatient",
        "status": "active",
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Patient", "path": "Patient"},
                {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
            ]
        },
    }
    status, _, _ = call("POST", "StructureDefinition", sd)
    check(status == 201, "POST StructureDefinition (differential only)", status)
    t0 = time.monotonic()
    status, _, oo = call(
        "POST",
        f"Patient/$validate?profile={sd_url}",
        {"resourceType": "Patient", "name": [{"family": "X"}]},
    )
    errs = errors(oo)
    check(
        status == 200 and any("birthDate" in e for e in errs),
        "$validate: missing birthDate -> error (HTTP 200)",
        f"{time.monotonic() - t0:.1f}s, {errs[:1]}",
    )
    status, _, oo = call(
        "POST",
        f"Patient/$validate?profile={sd_url}",
        {"resourceType": "Patient", "birthDate": "1950-01-01"},
    )
    check(status == 200 and not errors(oo), "$validate: with birthDate -> no error", errors(oo)[:1])

    # required binding to a CodeSystem + ValueSet POSTed to the server
    cs_url, vs_url = (
        "http://sipfhir.se/fhir/CodeSystem/smoke-task",
        "http://sipfhir.se/fhir/ValueSet/smoke-task",
    )
    call(
        "PUT",
        f"CodeSystem?url={cs_url}",
        {
            "resourceType": "CodeSystem",
            "url": cs_url,
            "name": "SmokeTask",
            "status": "active",
            "content": "complete",
            "concept": [
                {"code": "follow-up", "display": "Follow up"},
                {"code": "renew", "display": "Renew"},
            ],
        },
    )
    call(
        "PUT",
        f"ValueSet?url={vs_url}",
        {
            "resourceType": "ValueSet",
            "url": vs_url,
            "name": "SmokeTaskVS",
            "status": "active",
            "compose": {"include": [{"system": cs_url}]},
        },
    )
    tsd_url = "http://sipfhir.se/fhir/StructureDefinition/SmokeTask"
    call(
        "PUT",
        f"StructureDefinition?url={tsd_url}",
        {
            "resourceType": "StructureDefinition",
            "url": tsd_url,
            "name": "SmokeTask",
            "status": "active",
            "fhirVersion": "4.0.1",
            "kind": "resource",
            "abstract": False,
            "type": "Task",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Task",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {"id": "Task", "path": "Task"},
                    {
                        "id": "Task.code",
                        "path": "Task.code",
                        "min": 1,
                        "binding": {"strength": "required", "valueSet": vs_url},
                    },
                ]
            },
        },
    )

    def task_with(code_value: str) -> dict:
        return {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": cs_url, "code": code_value}]},
        }

    _, _, oo = call("POST", f"Task/$validate?profile={tsd_url}", task_with("follow-up"))
    check(not errors(oo), "required binding: code in the ValueSet -> no error", errors(oo)[:1])
    _, _, oo = call("POST", f"Task/$validate?profile={tsd_url}", task_with("nonsense"))
    check(bool(errors(oo)), "required binding: code not in the ValueSet -> error", errors(oo)[:1])
    status, _, exp = call("GET", f"ValueSet/$expand?url={vs_url}")
    codes = sorted(c["code"] for c in exp.get("expansion", {}).get("contains", []))
    check(
        status == 200 and codes == ["follow-up", "renew"],
        "ValueSet/$expand of a stored CodeSystem",
        codes or errors(exp)[:1],
    )

    subscription_check()


def subscription_check() -> None:
    received: list[tuple[float, str, str]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            received.append((time.monotonic(), self.command, self.path))
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT = _any

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://localhost:{server.server_port}/hook"
    t0 = time.monotonic()
    status, _, sub = call(
        "POST",
        "Subscription",
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "smoke test",
            "criteria": "Task?",
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": FHIR_JSON},
        },
    )
    if not check(status == 201, "create rest-hook Subscription (status requested)", status):
        return
    active = None
    while time.monotonic() - t0 < 90:
        if call("GET", f"Subscription/{sub['id']}")[2]["status"] == "active":
            active = time.monotonic() - t0
            break
        time.sleep(0.25)
    check(
        active is not None,
        "Subscription becomes active",
        f"{active:.1f}s" if active else "not within 90 s",
    )
    t1 = time.monotonic()
    _, _, task = call(
        "POST", "Task", {"resourceType": "Task", "status": "requested", "intent": "order"}
    )
    hit = None
    while time.monotonic() - t1 < 90 and hit is None:
        hit = next((r for r in received if r[2].endswith(f"/Task/{task['id']}")), None)
        time.sleep(0.1)
    check(
        hit is not None,
        "rest-hook notification delivered",
        f"{hit[0] - t1:.1f}s after the write, {hit[1]} {hit[2]}" if hit else "not within 90 s",
    )
    call("DELETE", f"Subscription/{sub['id']}")
    server.shutdown()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # any failure: report it, count it
        check(False, "unexpected error", repr(error))
    passed = sum(ok for ok, _ in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)
