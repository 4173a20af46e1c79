"""The calibration arithmetic behind bench_trust.py: the inlier gate, leave-one-data-set-out
scoring and the operating-point rule, on outcomes whose answers are known."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dejavu_ros.config import DejavuConfig
from dejavu_ros.evaluation import calibration as cal
from dejavu_ros.relocalization import trust


def candidate(correct: bool, inliers: int, margin: float, accepted: bool = True) -> cal.CandidateOutcome:
    features = {k: 0.0 for k in trust.FEATURES}
    features.update(log_inliers=math.log1p(inliers), inlier_margin=margin, cx_margin=margin / 4)
    return cal.CandidateOutcome(keyframe_id=1, correct=correct, cx=0.2, cx_margin=margin / 4, features=features,
                                accepted=accepted, distance_m=0.0 if correct else 100.0)


def outcomes(seed: int = 0) -> list[cal.QueryOutcome]:
    """Three data sets; the right place has a clear margin and 10-40 inliers, a wrong one none."""
    rng = np.random.default_rng(seed)
    out = []
    for name in ("alpha", "beta", "gamma"):
        for i in range(60):
            right = i % 3 != 0
            inliers = int(rng.integers(10, 40)) if right else int(rng.integers(10, 25))
            margin = float(rng.normal(2.0, 0.5)) if right else float(rng.normal(-1.0, 0.5))
            out.append(cal.QueryOutcome(scenario=name, query=f"{name}{i}",
                                        candidates=[candidate(right, inliers, margin)]))
    return out


def test_the_gate_counts_inliers_and_needs_the_geometric_checks():
    assert cal.passes_gate(candidate(True, 14, 1.0), 12)
    assert not cal.passes_gate(candidate(True, 14, 1.0), 16)
    assert not cal.passes_gate(candidate(True, 50, 1.0, accepted=False), 12)
    assert cal.passes_gate(candidate(True, 5, 1.0))  # no gate: the collection's own acceptance


def test_a_lower_gate_publishes_more_at_the_same_precision_rule():
    data = outcomes()
    recall = {}
    for gate in (12, 20):
        lodo = cal.leave_one_out(data, gate)
        assert set(lodo) == {"alpha", "beta", "gamma"} and all(len(v) == 60 for v in lodo.values())
        t = cal.operating_point(lodo)
        precision, recall[gate], published, wrong = cal.precision_recall([s for v in lodo.values() for s in v], t)
        assert precision >= 99.5 and published > 0
    assert recall[12] > recall[20]  # right places with 12-19 inliers are published only below gate 20


def test_the_operating_point_is_the_smallest_threshold_meeting_the_rule():
    scored = {"a": [(0.9, True)] * 50 + [(0.6, False)] + [(0.5, True)] * 10}
    assert cal.operating_point(scored) == pytest.approx(0.605)
    assert cal.precision_recall(scored["a"], 0.605)[:3] == (100.0, pytest.approx(50 / 61 * 100), 50)


def test_no_operating_point_when_wrong_places_score_as_high_as_right_ones():
    scored = {"a": [(0.9995, True)] * 50 + [(0.9995, False)] * 5, "b": [(0.8, True)] * 20}
    assert cal.operating_point(scored) is None


def test_the_shipped_gate_is_the_default_inlier_threshold():
    model = trust.TrustModel.load()
    assert model.meta.get("min_inliers", 20) == DejavuConfig().matching.min_inliers


def placed(correct: bool, inliers: int, margin: float, x: float) -> cal.CandidateOutcome:
    c = candidate(correct, inliers, margin)
    c.position, c.distance_m = (x, 0.0, 0.0), abs(x)
    return c


def test_a_published_pose_is_judged_on_the_keyframe_the_engine_anchors_it_on():
    model = cal.fit_trust(outcomes())
    winner = placed(False, 30, 4.0, 8.0)  # the most confident keyframe, 8 m along the same façade
    neighbour = placed(True, 60, 1.0, 1.0)  # shares more of the view: it anchors the pose when trusted
    elsewhere = placed(False, 200, 1.0, 60.0)  # another place: never an anchor, whatever its inliers
    p_winner, p_neighbour = model.probability(winner.features), model.probability(neighbour.features)
    assert p_winner > p_neighbour
    q = cal.QueryOutcome(scenario="a", query="q", candidates=[winner, neighbour, elsewhere])
    p, ok = cal.decide(q, model, 20)
    assert p == p_winner and isinstance(ok, cal.AnchoredPlace)
    assert ok.correct_at(p_neighbour)  # both trusted: the neighbour anchors the pose, and it is right
    assert not ok.correct_at((p_neighbour + p_winner) / 2)  # only the winner trusted: its own pose
    assert cal.precision_recall([(p, ok)], p_neighbour)[3] == 0
    assert cal.precision_recall([(p, ok)], (p_neighbour + p_winner) / 2)[3] == 1
    assert cal.decide(q, model, 201)[0] == 0.0  # behind a gate no candidate passes nothing is published
    for c in q.candidates:  # evidence saved without positions: judged on the winner
        c.position = None
    assert cal.decide(q, model, 20) == (p_winner, False)


@pytest.mark.parametrize("seed", range(8))
def test_the_anchor_rule_is_the_engines(seed):
    from types import SimpleNamespace

    from dejavu_ros.relocalization.pose import pose_anchor

    rng = np.random.default_rng(seed)
    k = 8
    x = rng.uniform(0, 40, k)
    probability = rng.uniform(0.9, 1.0, k)
    inliers = rng.integers(20, 80, k)
    correct = rng.random(k) < 0.5
    best = int(np.argmax(probability))
    near = trust.same_place(np.stack([x, np.zeros(k), np.zeros(k)], 1), 15.0)
    checked = {i: (SimpleNamespace(accepted=True, num_inliers=int(inliers[i])), None) for i in range(k)}
    for route in (None, *range(k)):  # no route, or the route naming each candidate in turn
        pool = tuple((float(probability[i]), int(inliers[i]), bool(correct[i]), i == best, i == route)
                     for i in range(k) if near[best, i])
        for threshold in np.quantile(probability, [0.0, 0.3, 0.6, 0.9]):
            assert cal.AnchoredPlace(pool).correct_at(threshold) == correct[
                pose_anchor(best, near, checked, probability, threshold, route=route)]


def test_candidates_the_engine_verified_below_the_reported_ones_count_for_the_decision_not_the_fit():
    base = outcomes()
    model = cal.fit_trust(base)
    winner = placed(False, 30, 4.0, 8.0)
    hidden = placed(True, 60, 1.0, 1.0)  # a runner-up ranked below engine.publish_top_k: it anchors
    hidden.reported = False
    q = cal.QueryOutcome(scenario="a", query="q", candidates=[winner, hidden])
    assert q.verified == [winner] and q.checked == [winner, hidden]
    p, ok = cal.decide(q, model, 20)
    assert ok.correct_at(model.probability(hidden.features))
    refit = cal.fit_trust(base + [dataclasses.replace(q, scenario="alpha", candidates=[hidden])])
    assert refit.coef == model.coef and refit.intercept == model.intercept


def test_a_model_scored_as_it_is_publishes_behind_its_gate_at_its_threshold():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_trust import score_as_is

    data = outcomes()
    model = cal.fit_trust(data, threshold=0.9)
    low, high = score_as_is(data, model, 12, 15.0), score_as_is(data, model, 30, 15.0)
    assert low["threshold"] == 0.9 and set(low["per_data_set"]) == {"alpha", "beta", "gamma", "pooled"}
    pooled = [cal.decide(q, model, 12) for q in data]
    assert low["per_data_set"]["pooled"]["published"] == cal.precision_recall(pooled, 0.9)[2] > 0
    assert high["per_data_set"]["pooled"]["published"] < low["per_data_set"]["pooled"]["published"]
    assert sum(v["published"] for k, v in low["per_data_set"].items() if k != "pooled") == \
        low["per_data_set"]["pooled"]["published"]
