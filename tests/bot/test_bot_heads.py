"""Which head a command binds to (``labrador.bot.heads.bind``) and when GitHub says to slow down
(``labrador.bot.github.rate_limit_wait``): pure functions, pinned down case by case."""

from __future__ import annotations

import pytest

from labrador.bot.github import SECONDARY_WAIT_S, rate_limit_wait
from labrador.bot.heads import Binding, Sighting, bind, newest

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_a_comment_binds_to_the_head_pushed_before_it() -> None:
    log = [Sighting(A, 100), Sighting(B, 200)]
    assert bind(log, 150).sha == A and bind(log, 250).sha == B
    assert bind(log, 50).sha == "" and not bind(log, 50).ambiguous


def test_force_push_back_is_a_new_sighting_not_the_old_one() -> None:
    log = [Sighting(A, 100), Sighting(B, 200), Sighting(A, 300)]
    assert bind(log, 250).sha == B and bind(log, 350).sha == A
    assert newest(log) == A


def test_a_push_in_the_comments_second_is_ambiguous_and_names_both() -> None:
    got = bind([Sighting(A, 100), Sighting(B, 200)], 200)
    assert got.ambiguous and got.sha == "" and got.candidates == (A, B)


def test_a_head_first_seen_after_the_comment_without_a_push_time_is_ambiguous() -> None:
    log = [Sighting(A, 100), Sighting(B, 300, exact=False)]  # B read from GitHub at 300: pushed some time before
    assert bind(log, 200).ambiguous and bind(log, 200).candidates == (A, B)
    assert bind(log, 301).sha == B  # written after the bot knew B
    assert bind(log, 50) == Binding()  # before any push the bot saw: unknown, said as such


def test_a_late_exact_sighting_settles_an_inexact_one() -> None:
    log = [Sighting(A, 100), Sighting(B, 300, exact=False), Sighting(B, 150)]  # the lost push arrived after all
    assert bind(log, 200).sha == B and bind(log, 120).sha == A


def test_a_head_seen_again_inexactly_does_not_blur_the_past() -> None:
    log = [Sighting(A, 100), Sighting(B, 200), Sighting(B, 400, exact=False)]
    assert bind(log, 300).sha == B and not bind(log, 300).ambiguous


@pytest.mark.parametrize(("status", "headers", "body", "wait"), [
    (429, {"retry-after": "7"}, "", 7.0),
    (403, {"retry-after": "3"}, "You have exceeded a secondary rate limit", 3.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1060"}, "API rate limit exceeded", 61.0),
    (403, {}, "You have exceeded a secondary rate limit. Please wait a few minutes", SECONDARY_WAIT_S),
    (429, {}, "", SECONDARY_WAIT_S),
    (403, {"x-ratelimit-remaining": "12"}, "Resource not accessible by integration", None),
    (404, {"retry-after": "5"}, "", None),
    (500, {}, "rate limit", None),
])
def test_rate_limit_answers_say_how_long_to_wait(status: int, headers: dict, body: str, wait: float | None) -> None:
    assert rate_limit_wait(status, headers, body, now=1000.0) == wait
