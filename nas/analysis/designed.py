"""Reports of designed runs (`nas study`, `nas audit`): which writer a run needs, and its terminal summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.run import RunStore

DESIGNED_KINDS = ("study", "audit")


def write_designed_report(store: RunStore, out_dir: Path, *, plots: bool = True) -> Any:
    """Write the report of a study or audit run into ``out_dir``; returns its analysis."""
    kind = store.read_config().kind
    if kind == "study":
        from nas.analysis.study_report import write_study_report

        return write_study_report(store, out_dir, plots=plots)
    from nas.analysis.audit_report import write_audit_report

    return write_audit_report(store, out_dir, plots=plots)


def summary_lines(kind: str, analysis: Any) -> list[str]:
    """A few lines for the terminal: a study's claims and verdicts, or an audit's ranking of signals."""
    if kind == "study":
        lines = [f"{analysis.run_name}: study, {len(analysis.trials)} trial(s); claims:"]
        for claim in analysis.claims:
            lines.append(f"  ({claim.key}) {claim.verdict}: {claim.statement}")
        return lines
    from nas.analysis.audit_choice import bf16_verdict, choose_default_proxy

    lines = [f"{analysis.run}: audit of {len(analysis.panel)} architectures; Kendall τ against {analysis.reference} "
             "(accuracy):"]
    ranked = sorted(analysis.table("accuracy"), key=lambda s: -(s.tau if s.tau is not None else -2.0))
    for s in ranked:
        tau = "n/a" if s.tau is None else f"{s.tau:+.3f} [{s.tau_lo:+.3f}, {s.tau_hi:+.3f}]"
        cost = "–" if s.cpu_s is None else f"{s.cpu_s:.1f} CPU-s"
        lines.append(f"  {s.signal:<40} τ {tau}  n {s.n}  {cost}")
    lines.append("default proxy: " + choose_default_proxy(analysis)["statement"])
    lines.append("bf16: " + bf16_verdict(analysis)["statement"])
    return lines
