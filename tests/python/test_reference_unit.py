"""Unit tests of the Python reference itself, on hand-computed cases (no binary needed).

Every expected number here is derived by hand from SPEC.md (the derivations are in the
comments), so that the reference used by test_reference_match.py is trustworthy.
"""

from __future__ import annotations

import gzip
import math
import os
import tomllib

import pytest

import make_cases
import reference as ref

REGIONS = make_cases.default_regions_path()

HEADER = ("response_id,respondent_key,submitted_at,survey_year,institution_code,"
          "work_district_code,duration_seconds,current_culture")


def cfg(**over):
    c = {"survey": {"instrument": "votes", "max_picks": 10, "min_duration_seconds": 60},
         "estimation": {"margin_of_error": 0.05, "min_floor": 1, "suppression_min_n": 1},
         "publish": {"max_quarantine_ratio": 1.0}}
    for k, v in over.items():
        sec, key = k.split("__")
        c[sec][key] = v
    return c


def write(tmp_path, master_rows, files):
    master = tmp_path / "institutions.csv"
    master.write_text("institution_code,institution_name,institution_type,province_code,"
                      "district_code,headcount\n" + "\n".join(master_rows) + "\n")
    raw = tmp_path / "raw"
    for rel, data in files.items():
        p = raw / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(master), str(raw)


def rec(rid, key, picks, inst="KAB3319", dist="3319", ts="2024-09-02T08:15:00+07:00",
        dur="300", year="2024"):
    return f"{rid},{key},{ts},{year},{inst},{dist},{dur},{picks}"


# ------------------------------------------------------------------------------------------
# SPEC 1 / 9: rounding and categories
# ------------------------------------------------------------------------------------------


def test_rust_round_is_half_away_from_zero():
    assert ref.rust_round(2.5) == 3.0
    assert ref.rust_round(-2.5) == -3.0
    assert ref.rust_round(0.49999999999999994) == 0.0  # naive floor(x+0.5) gives 1
    assert ref.round_k(58.514285714285714, 1) == 58.5


@pytest.mark.parametrize("x,cat", [
    (58.5, "B"), (38.9, "C"), (60.9, "B"), (61.1, "B"), (62.1, "B"), (39.8, "C"),
    (74.1, "B"), (43.5, "C"), (75.0, "A"), (100.0, "A"), (74.9, "B"), (74.94, "B"),
    (50.0, "B"), (49.9, "C"), (49.96, "B"), (25.0, "C"), (24.9, "D"), (24.96, "C"), (0.0, "D"),
])
def test_categories(x, cat):
    assert ref.category(x) == cat


def test_spec9_ministry_and_national_figures():
    # overall = mean of the seven value indices (SPEC 4)
    ministry = [59.6, 64.1, 58.3, 53.7, 62.7, 43.5, 67.7]
    overall = sum(ministry) / 7
    assert ref.round_k(overall, 1) == 58.5 and ref.category(overall) == "B"
    cats = [ref.category(x) for x in ministry]
    assert cats == ["B", "B", "B", "B", "B", "C", "B"]
    national = [57.9, 74.1, 56.7, 63.8, 65.8, 38.9, 69.4]
    overall = sum(national) / 7
    assert ref.round_k(overall, 1) == 60.9 and ref.category(overall) == "B"
    assert ref.category(38.9) == "C"
    assert ref.round_k(61.1 - 62.1, 1) == -1.0  # Kudus delta


def test_spec9_ministry_through_the_pipeline(tmp_path):
    # 1000 respondents; value v hit by the first count_v respondents -> index_v = count_v / 10
    counts = [596, 641, 583, 537, 627, 435, 677]
    lines = [HEADER]
    for i in range(1000):
        picks = [f"{v.upper()}1" for v, c in zip(ref.VALUES, counts) if i < c] or ["X01"]
        lines.append(rec(f"r{i}", f"k{i}", "|".join(picks)))
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,5000"],
                        {"a.csv": "\n".join(lines) + "\n"})
    out = ref.compute(2024, master, REGIONS, raw, cfg(), None)
    row = out["institution_index"][0]
    assert [row[f"index_{v}"] for v in ref.VALUES] == pytest.approx(
        [59.6, 64.1, 58.3, 53.7, 62.7, 43.5, 67.7], abs=1e-12)
    assert row["index_overall"] == pytest.approx(409.6 / 7, abs=1e-12)
    assert row["category"] == "B" and row["category_ad"] == "C" and row["category_ak"] == "B"
    assert row["min_required"] == math.ceil(5000 / (1 + 5000 * 0.0025))  # 371
    assert row["eligible"] is True


def test_ranks_competition_on_two_decimals():
    items = [("a", 70.0), ("b", 69.996), ("c", 70.004), ("d", 69.994), ("e", None), ("f", 50.0)]
    r = ref.competition_ranks(items)
    # 70.0, 70.00, 70.00 tie at 1; 69.99 is 4th; 50 is 5th; None unranked
    assert r == {"a": 1, "b": 1, "c": 1, "d": 4, "e": None, "f": 5}


# ------------------------------------------------------------------------------------------
# SPEC 5.1: an institution of three respondents
# ------------------------------------------------------------------------------------------


def test_institution_of_three(tmp_path):
    # r1 BP1 AK1 KO1 -> s = 3/7; r2 BP1 BP2 HA3 X01 -> s = 2/7; r3 AD1 -> s = 1/7
    # mean s = 2/7 -> 28.571428...; S^2 = var(3,2,1)/49 = 1/49; N = 10, n = 3, f = 0.3
    # se = 100 sqrt(0.7 * (1/49) / 3) = 100 sqrt(1/210)
    body = "\n".join([HEADER, rec("r1", "k1", "BP1|AK1|KO1"), rec("r2", "k2", "BP1|BP2|HA3|X01"),
                      rec("r3", "k3", "AD1")]) + "\n"
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,10"], {"a.csv": body})
    out = ref.compute(2024, master, REGIONS, raw, cfg(), None)
    (row,) = out["institution_index"]
    assert row["n_respondents"] == 3 and row["response_rate"] == 0.3
    assert row["min_required"] == 10 and row["eligible"] is False  # min(10, max(1, ceil(9.76)))
    assert row["index_overall"] == pytest.approx(200 / 7, rel=1e-15)
    assert [row[f"index_{v}"] for v in ref.VALUES] == pytest.approx(
        [200 / 3, 100 / 3, 100 / 3, 100 / 3, 0, 100 / 3, 0])
    se = 100 * math.sqrt(1 / 210)
    assert row["se_overall"] == pytest.approx(se, rel=1e-14)
    assert row["ci95_low"] == pytest.approx(200 / 7 - 1.96 * se)
    assert row["ci95_high"] == pytest.approx(200 / 7 + 1.96 * se)
    assert row["category"] == "C" and row["category_bp"] == "B" and row["category_lo"] == "D"
    assert row["rank_national"] is None  # not eligible
    beh = {b["behaviour_code"]: b["score"] for b in out["behaviour_scores"]
           if b["level"] == "institution"}
    assert beh["BP1"] == pytest.approx(200 / 3) and beh["BP2"] == pytest.approx(100 / 3)
    assert beh["KL3"] == 0.0 and len(beh) == 21
    # no domain rows: no eligible institution
    assert out["district_index"] == [] and out["national_index"] == []


def test_single_respondent_has_null_se(tmp_path):
    body = HEADER + "\n" + rec("r1", "k1", "BP1") + "\n"
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,1"], {"a.csv": body})
    (row,) = ref.compute(2024, master, REGIONS, raw, cfg(), None)["institution_index"]
    assert row["eligible"] and row["se_overall"] is None and row["ci95_low"] is None
    assert row["index_overall"] == pytest.approx(100 / 7)


# ------------------------------------------------------------------------------------------
# SPEC 5.2: domains, hand-computed Taylor linearisation
# ------------------------------------------------------------------------------------------

DOMAIN_MASTER = ["KAB3319,Kudus,kabupaten,33,3319,4", "PROV33,Jateng,provinsi,33,,6"]
ALL = "BP1|AK1|KO1|HA1|LO1|AD1|KL1"  # s = 1
NONE = "X01"  # s = 0


def domain_files():
    return {"a.csv": "\n".join([
        HEADER,
        rec("a1", "ka1", ALL), rec("a2", "ka2", NONE),                         # A: N=4
        rec("b1", "kb1", ALL, inst="PROV33"), rec("b2", "kb2", ALL, inst="PROV33"),
        rec("b3", "kb3", NONE, inst="PROV33", dist="3374"),                      # B: N=6
    ]) + "\n"}


def test_domains_by_hand(tmp_path):
    # e = 0.5: min_required(4) = min(4, max(1, ceil(4/2))) = 2; min_required(6) = ceil(2.4) = 3
    # weights: A 4/2 = 2, B 6/3 = 2.
    # District 3319 = {a1 s1, a2 s0, b1 s1, b2 s1}: W = 8, R = 6/8 = 0.75
    #   A: z = (1/16, -3/16), zbar = -1/16, SS = 1/32; (1 - 1/2) * 2/1 * 1/32 = 1/32
    #   B: z = (1/16, 1/16, 0), zbar = 1/24, SS = 1/384; (1/2) * 3/2 * 1/384 = 1/512
    #   V = 17/512
    # Province 33 = all five: W = 10, R = 0.6; A: 1/50, B: 1/50; V = 1/25 -> se = 20
    master, raw = write(tmp_path, DOMAIN_MASTER, domain_files())
    out = ref.compute(2024, master, REGIONS, raw, cfg(estimation__margin_of_error=0.5), None)
    inst = {r["institution_code"]: r for r in out["institution_index"]}
    assert inst["KAB3319"]["min_required"] == 2 and inst["KAB3319"]["eligible"]
    assert inst["PROV33"]["min_required"] == 3 and inst["PROV33"]["eligible"]
    assert inst["KAB3319"]["index_overall"] == pytest.approx(50.0)
    assert inst["PROV33"]["index_overall"] == pytest.approx(200 / 3)
    assert (inst["PROV33"]["rank_national"], inst["KAB3319"]["rank_national"]) == (1, 2)
    assert inst["PROV33"]["rank_in_type"] == 1 and inst["KAB3319"]["rank_in_type"] == 1

    d = {r["district_code"]: r for r in out["district_index"]}
    assert sorted(d) == ["3319", "3374"]
    d1 = d["3319"]
    assert (d1["n_respondents"], d1["n_institutions"], d1["population_estimate"]) == (4, 2, 8.0)
    assert d1["index_overall"] == pytest.approx(75.0) and d1["category"] == "A"
    assert d1["se_overall"] == pytest.approx(100 * math.sqrt(17 / 512), rel=1e-14)
    assert d1["ci95_high"] == 100.0  # clipped
    assert d1["ci95_low"] == pytest.approx(75 - 1.96 * 100 * math.sqrt(17 / 512))
    assert d1["n_institutions_seated"] == 1 and d1["inst_mean_overall"] == pytest.approx(50.0)
    assert d1["province_code"] == "33" and d1["province_name"] == "Jawa Tengah"
    assert d1["district_name"] == "Kabupaten Kudus"
    d2 = d["3374"]
    assert d2["index_overall"] == 0.0 and d2["se_overall"] == 0.0 and d2["category"] == "D"
    assert d2["n_institutions_seated"] == 0 and d2["inst_mean_overall"] is None
    assert (d1["rank_national"], d2["rank_national"]) == (1, 2)
    assert (d1["rank_in_province"], d2["rank_in_province"]) == (1, 2)

    (p,) = out["province_index"]
    assert p["index_overall"] == pytest.approx(60.0) and p["se_overall"] == pytest.approx(20.0)
    assert p["population_estimate"] == 10.0 and p["n_institutions_seated"] == 2
    assert p["inst_mean_overall"] == pytest.approx((50 + 200 / 3) / 2)
    assert p["rank_national"] == 1
    (n,) = out["national_index"]
    assert n["country_code"] == "ID" and n["se_overall"] == pytest.approx(20.0)
    assert n["inst_mean_overall"] == pytest.approx((50 + 200 / 3) / 2)
    assert list(n) == ref.NATIONAL_COLUMNS + ["year"]


def test_domains_with_suppression(tmp_path):
    # suppression_min_n = 3: KAB3319 (n=2) is eligible but suppressed: it still enters the
    # domains, but not the headline means; district 3374 (1 respondent) is suppressed.
    master, raw = write(tmp_path, DOMAIN_MASTER, domain_files())
    out = ref.compute(2024, master, REGIONS, raw,
                      cfg(estimation__margin_of_error=0.5, estimation__suppression_min_n=3),
                      None)
    inst = {r["institution_code"]: r for r in out["institution_index"]}
    k = inst["KAB3319"]
    assert k["suppressed"] and k["eligible"] and k["index_overall"] is None
    assert k["category"] is None and k["rank_national"] is None and k["se_overall"] is None
    assert k["n_respondents"] == 2 and k["min_required"] == 2
    assert inst["PROV33"]["rank_national"] == 1
    d = {r["district_code"]: r for r in out["district_index"]}
    assert d["3319"]["index_overall"] == pytest.approx(75.0)
    assert d["3319"]["n_institutions_seated"] == 0 and d["3319"]["inst_mean_overall"] is None
    s = d["3374"]
    assert s["suppressed"] and s["index_overall"] is None and s["rank_national"] is None
    assert s["population_estimate"] == 2.0 and s["n_respondents"] == 1
    assert d["3319"]["rank_national"] == 1
    (p,) = out["province_index"]
    assert p["n_institutions_seated"] == 1 and p["inst_mean_overall"] == pytest.approx(200 / 3)
    beh = [b for b in out["behaviour_scores"] if b["unit_code"] == "KAB3319"]
    assert len(beh) == 21 and all(b["score"] is None and b["n_respondents"] == 2 for b in beh)


def test_previous_year_join(tmp_path):
    master, raw = write(tmp_path, DOMAIN_MASTER, domain_files())
    c = cfg(estimation__margin_of_error=0.5)
    prev = {"institution_index": {"KAB3319": {"index_overall": 52.5}},
            "district_index": {"3319": {"index_overall": 70.0, "inst_mean_overall": None}},
            "province_index": {}, "national_index": {"ID": {"index_overall": 61.0,
                                                            "inst_mean_overall": 60.0}}}
    out = ref.compute(2024, master, REGIONS, raw, c, prev)
    inst = {r["institution_code"]: r for r in out["institution_index"]}
    assert inst["KAB3319"]["delta_index_overall"] == pytest.approx(-2.5)
    assert inst["PROV33"]["prev_index_overall"] is None
    d = {r["district_code"]: r for r in out["district_index"]}
    assert d["3319"]["delta_index_overall"] == pytest.approx(5.0)
    assert d["3319"]["prev_inst_mean_overall"] is None
    assert d["3319"]["delta_inst_mean_overall"] is None
    (n,) = out["national_index"]
    assert n["delta_index_overall"] == pytest.approx(-1.0)
    assert n["delta_inst_mean_overall"] == pytest.approx((50 + 200 / 3) / 2 - 60)


# ------------------------------------------------------------------------------------------
# likert scoring
# ------------------------------------------------------------------------------------------


def test_likert_scores(tmp_path):
    cols = ["response_id", "respondent_key", "submitted_at", "survey_year", "institution_code",
            "work_district_code"] + ref.BEHAVIOURS
    a1 = [1] * 20 + [5]            # y = 0 ... 1 -> value kl = (0+0+1)/3
    a2 = [5, 4, 3] * 7              # y = 1, .75, .5 -> each value .75
    lines = [",".join(cols)]
    for i, ans in enumerate((a1, a2)):
        lines.append(",".join([f"r{i}", f"k{i}", "2025-09-02 08:00:00", "2025", "KAB3319",
                               "3319"] + [str(a) for a in ans]))
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,2"],
                        {"a.csv": "\n".join(lines) + "\n"})
    c = cfg(survey__instrument="likert")
    (row,) = ref.compute(2025, master, REGIONS, raw, c, None)["institution_index"]
    # s1 = (1/3)/7 = 1/21, s2 = 0.75 -> mean = (1/21 + 3/4)/2
    assert row["index_overall"] == pytest.approx(100 * (1 / 21 + 0.75) / 2)
    assert row["index_kl"] == pytest.approx(100 * (1 / 3 + 0.75) / 2)
    assert row["index_bp"] == pytest.approx(100 * 0.75 / 2)
    assert row["se_overall"] == 0.0  # f = 1


# ------------------------------------------------------------------------------------------
# Ingest, validation, dedup
# ------------------------------------------------------------------------------------------


def test_csv_splitter_lines_raw_and_quoting():
    data = (b'h1,h2\n'                      # line 1
            b'a,"x\r\ny"\n'                   # record at 2 spanning 2-3
            b'\n'                             # 4 blank
            b'   \n'                          # 5 blank
            b'b,"q""q"\r\n'                   # 6
            b'c,d"e\n'                        # 7 stray quote
            b'd,"e"f\n'                       # 8 char after closing quote
            b'e,"open\nstill open')           # 9-10 unterminated
    recs = list(ref.split_csv(data, ord(","), 0, 1))
    assert [r[0] for r in recs] == [1, 2, 6, 7, 8, 9]
    assert recs[1][1] == b'a,"x\r\ny"' and recs[1][2] == [b"a", b"x\r\ny"] and recs[1][3] is None
    assert recs[2][2] == [b"b", b'q"q'] and recs[2][1] == b'b,"q""q"'
    assert recs[3][3] and recs[4][3] and recs[5][3]
    assert recs[5][1] == b'e,"open\nstill open'


def test_delimiter_detection():
    assert ref.detect_delimiter(b"a;b;c") == ord(";")
    assert ref.detect_delimiter(b"a\tb\tc") == ord("\t")
    assert ref.detect_delimiter(b"a,b;c") == ord(",")      # tie -> ','
    assert ref.detect_delimiter(b"a;b;c,d") == ord(";")
    assert ref.detect_delimiter(b"abc") == ord(",")


def test_timestamps():
    off7 = 7 * 3600
    t = ref.parse_instant("2024-09-02T08:15:00+07:00", off7)
    assert t == ref.parse_instant("2024-09-02T01:15:00Z", off7)
    assert t == ref.parse_instant("2024-09-02 08:15:00", off7)
    assert t == ref.parse_instant("2024-09-02 09:15:00", 8 * 3600)
    assert t + 1 == ref.parse_instant("2024-09-02T08:15:00.000000001+07:00", off7)
    assert ref.parse_instant("1970-01-01T00:00:00Z", 0) == 0
    # any number of fraction digits (RFC 3339 time-secfrac = "." 1*DIGIT), cut to nanoseconds
    assert ref.parse_instant("1970-01-01T00:00:00.1234567891Z", 0) == 123456789
    assert ref.parse_instant("2024-02-29 00:00:00", off7) is not None
    for bad in ("2023-02-29 00:00:00", "2024-09-02T08:15:00", "2024-09-02T08:15:00+0700",
                "2024/09/02 08:15:00", "2024-09-02 08:15", "2024-13-01T00:00:00Z",
                "2024-09-02T24:00:00Z", "2024-09-02 08:15:00Z", "1725239700"):
        assert ref.parse_instant(bad, off7) is None, bad


def test_validation_and_dedup(tmp_path):
    lines = [
        HEADER,
        rec("", "k1", "BP1"),                                     # 2 missing response_id
        rec("r3", "k3", "BP1|BP1"),                               # 3 invalid_picks
        rec("r4", "k4", "BP1", dur="-1"),                         # 4 invalid_value
        rec("r5", "k5", "BP1", dur="59"),                         # 5 speeder
        rec("r6", "k6", "BP1", year="2023"),                      # 6 year_mismatch
        rec("r7", "k7", "BP1", dist="33.19"),                     # 7 accepted
        rec("r8", "k7", "AK1", ts="2024-09-03 08:15:00"),         # 8 later -> kept, r7 superseded
        rec("r9", "k9", "AK1", dist="3399"),                      # 9 unknown_region
        rec("r10", "k10", "AK1", inst="nope"),                    # 10 unknown_institution
        rec("r11", "k11", "AK1"),                                 # 11 kept
        rec("r11", "k12", "AK1"),                                 # 12 duplicate_response_id
        'r13,k13,2024-09-02T08:15:00Z,2024,KAB3319,3319,300',      # 13 malformed (7 fields)
        rec("b", "k14", "KO1"),                                   # 14 same instant, id b > a
        rec("a", "k14", "KO1"),                                   # 15 superseded by b
        rec("r16", "k16", "AK1", ts="2024-09-03 08:15:00"),       # 16 first in input order
        rec("r16", "k16", "AK2", ts="2024-09-03T01:15:00Z"),      # 17 identical -> superseded
    ]
    data = ("\n".join(lines) + "\n").encode()
    files = {"a.csv": data, "b/c.jsonl": b'{"response_id": "x"}\nnot json\n\n[1]\n'
             b'{"Response_ID ": 5, "respondent_key": "kj", "submitted_at": "2024-09-02T08:15:00Z",'
             b' "survey_year": 2024, "institution_code": "kab3319", "work_district_code": 3319,'
             b' "current_culture": [" bp1", "ko2 "]}\n'
             b'{"response_id": "y\xff"}\n',
             "ignored.txt": b"x"}
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,100"], files)
    out = ref.compute(2024, master, REGIONS, raw, cfg(), None)
    got = {(q["source_file"], q["line_number"]): (q["reason"], q["field"])
           for q in out["quarantine"]}
    assert got == {
        ("a.csv", 2): ("missing_field", "response_id"),
        ("a.csv", 3): ("invalid_picks", None),
        ("a.csv", 4): ("invalid_value", "duration_seconds"),
        ("a.csv", 5): ("speeder", None),
        ("a.csv", 6): ("year_mismatch", None),
        ("a.csv", 7): ("superseded", None),
        ("a.csv", 9): ("unknown_region", None),
        ("a.csv", 10): ("unknown_institution", None),
        ("a.csv", 12): ("duplicate_response_id", None),
        ("a.csv", 13): ("malformed_row", None),
        ("a.csv", 15): ("superseded", None),
        ("a.csv", 17): ("superseded", None),
        ("b/c.jsonl", 1): ("missing_field", "respondent_key"),
        ("b/c.jsonl", 2): ("malformed_row", None),
        ("b/c.jsonl", 4): ("malformed_row", None),
        ("b/c.jsonl", 6): ("invalid_encoding", None),
    }
    assert [q["source_file"] for q in out["quarantine"]][:1] == ["a.csv"]
    sup = {q["line_number"]: q["kept_response_id"] for q in out["quarantine"]
           if q["reason"] == "superseded"}
    assert sup == {7: "r8", 15: "b", 17: "r16"}
    assert out["file_counts"]["a.csv"] == {
        "records_read": 16, "accepted": 4,
        "quarantined": {"missing_field": 1, "invalid_picks": 1, "invalid_value": 1,
                        "speeder": 1, "year_mismatch": 1, "superseded": 3, "unknown_region": 1,
                        "unknown_institution": 1, "duplicate_response_id": 1,
                        "malformed_row": 1}}
    assert out["file_counts"]["b/c.jsonl"]["records_read"] == 5
    assert out["file_counts"]["b/c.jsonl"]["accepted"] == 1
    assert out["ignored_files"] == ["ignored.txt"]
    (row,) = out["institution_index"]
    assert row["n_respondents"] == 5  # r8, r11, b, r16, JSON "5"


def test_gzip_multimember_and_bom(tmp_path):
    body1 = ("\ufeff" + HEADER.replace(",", ";") + "\r\n").encode()
    body1 += (rec("r1", "k1", "BP1").replace(",", ";") + "\r\n").encode()
    j = (b'{"response_id": "j1", "respondent_key": "kj1", "submitted_at": "2024-09-02T08:15:00Z",'
         b' "survey_year": "2024", "institution_code": "KAB3319", "work_district_code": "3319",'
         b' "current_culture": "BP1"}\n')
    j2 = j.replace(b"j1", b"j2")
    files = {"a.csv": body1, "b.jsonl.gz": gzip.compress(j) + gzip.compress(j2)}
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,100"], files)
    out = ref.compute(2024, master, REGIONS, raw, cfg(), None)
    assert out["file_counts"]["a.csv"]["accepted"] == 1
    assert out["file_counts"]["b.jsonl.gz"]["records_read"] == 2


def test_jsonl_bom_is_stripped(tmp_path):
    j = ('\ufeff{"response_id": "j1", "respondent_key": "k", "submitted_at": '
         '"2024-09-02T08:15:00Z", "survey_year": 2024, "institution_code": "KAB3319", '
         '"work_district_code": "3319", "current_culture": "BP1"}\r\n')
    master, raw = write(tmp_path, ["KAB3319,Kudus,kabupaten,33,3319,100"], {"a.ndjson": j})
    out = ref.compute(2024, master, REGIONS, raw, cfg(), None)
    assert out["file_counts"]["a.ndjson"] == {"records_read": 1, "accepted": 1, "quarantined": {}}


def test_raw_is_cut_to_64_kib():
    assert len(ref.raw_text(b"A" * 70000).encode()) == 65536
    cut = ref.raw_text("é".encode() * 40000)
    assert len(cut.encode()) == 65536 and cut == "é" * 32768
    assert ref.raw_text(b"caf\xe9") == "caf\ufffd"


# ------------------------------------------------------------------------------------------
# The generated datasets (sanity of make_cases.py)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["votes", "likert"])
def test_generated_dataset_covers_every_reason(tmp_path, instrument):
    info = make_cases.build_dataset(str(tmp_path / instrument), instrument)
    with open(info["config"], "rb") as fh:
        c = tomllib.load(fh)
    assert set(c) == {"paths", "survey", "estimation", "publish"}
    assert set(c["paths"]) == {"regions", "master", "input", "warehouse", "quarantine"}
    prev = None
    for y in info["years"]:
        out = ref.compute(y, info["master"][y], info["regions"], info["input"][y], c, prev)
        prev = ref.prev_from(out)
    reasons = {q["reason"] for q in out["quarantine"]}
    wanted = set(ref.REASONS) - ({"straightliner"} if instrument == "votes"
                                 else {"invalid_picks"})
    assert wanted <= reasons, wanted - reasons
    assert out["gate_ratio"] < c["publish"]["max_quarantine_ratio"]
    assert sum(fc["records_read"] for fc in out["file_counts"].values()) < 4000
    # determinism
    again = make_cases.build_dataset(str(tmp_path / (instrument + "2")), instrument)
    for y in info["years"]:
        for dirpath, _, files in os.walk(info["input"][y]):
            for f in files:
                p = os.path.join(dirpath, f)
                q = p.replace(info["root"], again["root"])
                assert open(p, "rb").read() == open(q, "rb").read(), p
