"""Pure parts of the resolver: which addresses an answer pins, for how long, under which name."""

from __future__ import annotations

import dnslib

from corral.network.pinned_names import PinnedNames
from corral.network.resolver import MIN_PIN_TTL, Answer, pins_of_answer


def _answer(name: str, *records: str) -> dnslib.DNSRecord:
    reply = dnslib.DNSRecord.question(name).reply()
    for record in records:
        reply.add_answer(*dnslib.RR.fromZone(record))
    return dnslib.DNSRecord.parse(reply.pack())


def test_a_records_of_the_name_with_the_smallest_ttl() -> None:
    answer = _answer("a.test", "a.test. 300 IN A 192.0.2.1", "a.test. 120 IN A 192.0.2.2")
    assert pins_of_answer(answer, "a.test") == Answer(("192.0.2.1", "192.0.2.2"), 120.0)


def test_short_ttl_is_raised_to_the_minimum() -> None:
    answer = _answer("a.test", "a.test. 1 IN A 192.0.2.1")
    assert pins_of_answer(answer, "a.test").ttl == MIN_PIN_TTL


def test_cname_chain_is_followed_and_strangers_are_ignored() -> None:
    answer = _answer(
        "api.test",
        "API.test. 600 IN CNAME edge.cdn.test.",
        "edge.cdn.test. 400 IN CNAME host.cdn.test.",
        "host.cdn.test. 90 IN A 198.51.100.7",
        "other.test. 900 IN A 203.0.113.66",  # not on the chain: an injected extra
    )
    assert pins_of_answer(answer, "api.test") == Answer(("198.51.100.7",), 90.0)


def test_cname_loop_and_empty_answer() -> None:
    looped = _answer("a.test", "a.test. 60 IN CNAME b.test.", "b.test. 60 IN CNAME a.test.")
    assert pins_of_answer(looped, "a.test").addresses == ()
    assert pins_of_answer(_answer("a.test"), "a.test") == Answer((), MIN_PIN_TTL)


def test_pinned_names_expire_and_are_per_sandbox_and_name() -> None:
    now = [100.0]
    pins = PinnedNames(clock=lambda: now[0])
    pins.add("s1", "a.test", ["192.0.2.1"], 30)
    assert pins.pinned("s1", "192.0.2.1", "a.test")
    assert not pins.pinned("s2", "192.0.2.1", "a.test")
    assert not pins.pinned("s1", "192.0.2.1", "b.test")
    now[0] = 131.0
    assert not pins.pinned("s1", "192.0.2.1", "a.test")
    pins.add("s1", "a.test", ["192.0.2.1"], 30)
    pins.forget("s1")
    assert not pins.pinned("s1", "192.0.2.1", "a.test") and len(pins) == 0
