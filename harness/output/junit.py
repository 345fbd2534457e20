"""JUnit XML of a session: one testcase per run, so CI systems show each run as a test.

A verdict that differs from the expectation (or the baseline) is a failure; a known crasher (a
non-clean verdict that is expected) is an expected failure (``skipped`` with type xfail), so CI stays
green until it changes; a run in a broken slot or one the cell cannot run is skipped with why.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.model.assessment import Standing, evidence_lines, failure_message, standing, verdicts_text
from harness.model.records import RunResult, SessionRecord


def junit(record: SessionRecord, name: str) -> str:
    runs = record.runs
    standings = [standing(r, record.broken) for r in runs]
    failures = sum(1 for s in standings if s is Standing.FAILED)
    skipped = sum(
        1
        for r, s in zip(runs, standings)
        if s is not Standing.FAILED and (s is not Standing.PASSED or r.verdict.policy.known_failure)
    )
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(runs)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{sum(r.duration for r in runs):.3f}",
    )
    for result, where in zip(runs, standings):
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"harness.{result.scenario}",
            name=f"{result.mechanism}[{result.layout}]" + _cell_suffix(record, result.cell.label),
            time=f"{result.duration:.3f}",
        )
        props = ET.SubElement(case, "properties")
        values = {
            "verdict": result.verdict.value,
            "expected": verdicts_text(result.expected),
            "cycles": result.cycles_requested,
            "trials": result.trials,
            "stability": result.stability,
            "first_crash_cycle": result.first_crash_cycle,
            "cell": result.cell.label,
        }
        if result.baseline is not None:
            values["baseline"] = result.baseline.expected.value if result.baseline.expected else "none"
        for key, value in values.items():
            ET.SubElement(props, "property", name=key, value=str(value))
        for outcome, number in result.counts.items():
            ET.SubElement(props, "property", name=f"count.{outcome.value}", value=str(number))
        if where is Standing.FAILED:
            failure = ET.SubElement(case, "failure", message=failure_message(result), type="VerdictMismatch")
            failure.text = "\n".join(evidence_lines(result))
        elif where is not Standing.PASSED:
            ET.SubElement(case, "skipped", type=where.value, message=_skip_message(result, where))
        elif result.verdict.policy.known_failure:
            ET.SubElement(
                case, "skipped", type="xfail", message=f"known {result.verdict.value}: as expected, not a regression"
            )
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _cell_suffix(record: SessionRecord, label: str) -> str:
    return f"[{label}]" if len({r.cell.label for r in record.runs}) > 1 else ""


def _skip_message(result: RunResult, where: Standing) -> str:
    if where is Standing.BROKEN:
        return "its slot's clean control failed: the cell is at fault here, not the scenario"
    if where is Standing.NOT_APPLICABLE:
        return f"unsupported: {result.reason or ''}"
    return "interrupted before it finished"
