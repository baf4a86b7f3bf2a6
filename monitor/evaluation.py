"""Rule tests: every rule's `examples` run through the compiled engine, each a pass or a failure."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.rules import RuleSet


@dataclass(frozen=True, slots=True)
class ExampleResult:
    rule: str
    text: str
    expected: bool  # True: should match
    matched: bool

    @property
    def passed(self) -> bool:
        return self.expected == self.matched


def run_examples(ruleset: RuleSet) -> list[ExampleResult]:
    results = []
    for rule in ruleset.rules:
        for expected, texts in ((True, rule.examples.match), (False, rule.examples.no_match)):
            for text in texts:
                matched = any(m.rule == rule.name for m in ruleset.engine.match_text(text))
                results.append(ExampleResult(rule.name, text, expected, matched))
    return results
