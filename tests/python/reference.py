"""Independent reference implementation of the berakhlak contract (/work/shared/SPEC.md).

Pure Python, standard library only. It is written from the SPEC text (plus the team's written
interpretation decisions for what the SPEC leaves open) and never from the Rust code, so that the
integration tests can catch mistakes in the Rust implementation.

Entry point: ``compute(year, master_path, regions_path, input_dir, config, prev)``.

Arithmetic: every score, index, weight and variance is computed with ``fractions.Fraction`` (exact)
and converted to binary64 only at the end (``float(Fraction)`` is correctly rounded). Categories
and ranks are derived from those binary64 values with Rust's ``f64::round`` semantics (half away
from zero) as SPEC section 1 prescribes.

The CSV reader is a hand-written RFC 4180 splitter working on bytes (the ``csv`` module is not
used) so that line numbers, raw text and quoting errors follow the contract exactly.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from fractions import Fraction

# --------------------------------------------------------------------------------------------
# Domain constants (SPEC 1)
# --------------------------------------------------------------------------------------------

VALUES = ["bp", "ak", "ko", "ha", "lo", "ad", "kl"]
BEHAVIOURS = [f"{v.upper()}{i}" for v in VALUES for i in (1, 2, 3)]
VALUE_OF = {b: b[:2].lower() for b in BEHAVIOURS}

REASONS = [
    "malformed_row",
    "invalid_encoding",
    "missing_field",
    "invalid_value",
    "year_mismatch",
    "unknown_institution",
    "unknown_region",
    "region_mismatch",
    "invalid_picks",
    "speeder",
    "straightliner",
    "superseded",
    "duplicate_response_id",
]

INPUT_SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

# Field table of SPEC 2.2, in table order (this order decides which field a detail names).
BASE_REQUIRED = [
    "response_id",
    "respondent_key",
    "submitted_at",
    "survey_year",
    "institution_code",
    "work_district_code",
]
LIKERT_FIELDS = [b.lower() for b in BEHAVIOURS]

DEFAULT_CONFIG = {
    "survey": {
        "instrument": "votes",
        "instrument_by_year": {},
        "max_picks": 10,
        "distractors": [f"X{i:02d}" for i in range(1, 25)],
        "likert_min": 1,
        "likert_max": 5,
        "default_utc_offset": "+07:00",
        "min_duration_seconds": 60,
        "reject_straightliners": True,
    },
    "estimation": {"margin_of_error": 0.05, "min_floor": 30, "suppression_min_n": 10},
    "publish": {"max_quarantine_ratio": 0.10, "compression": "zstd"},
}

RAW_LIMIT = 64 * 1024

# Rust's char::is_whitespace (Unicode White_Space), used by str::trim.
_RUST_WS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def trim(s: str) -> str:
    return s.strip(_RUST_WS)


class HeaderError(Exception):
    """A CSV header lacks a required column (the run must stop with exit 2)."""


# --------------------------------------------------------------------------------------------
# Rounding, categories, ranks (SPEC 1, 5.3)
# --------------------------------------------------------------------------------------------


def rust_round(x: float) -> float:
    """f64::round: half away from zero, exact."""
    a = abs(x)
    f = math.floor(a)
    r = f + 1.0 if (a - f) >= 0.5 else f
    return math.copysign(r, x)


def round_k(x: float, k: int) -> float:
    p = 10.0**k
    return rust_round(x * p) / p


def category(x):
    if x is None:
        return None
    r = round_k(x, 1)
    if r >= 75.0:
        return "A"
    if r >= 50.0:
        return "B"
    if r >= 25.0:
        return "C"
    return "D"


def near_round_boundary(x, k: int, tol: float = 1e-9) -> bool:
    """True when x*10^k is within tol (relative) of a .5 boundary: rounding is then fragile."""
    if x is None:
        return False
    y = abs(x) * 10.0**k
    frac = y - math.floor(y)
    return abs(frac - 0.5) <= tol * max(1.0, y)


def competition_ranks(items):
    """items: list of (key, value_or_None). Returns {key: rank or None}; highest first, (1,2,2,4)."""
    rounded = {k: round_k(v, 2) for k, v in items if v is not None}
    out = {}
    vals = list(rounded.values())
    for k, v in items:
        if v is None:
            out[k] = None
        else:
            rv = rounded[k]
            out[k] = 1 + sum(1 for o in vals if o > rv)
    return out


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def normalize_config(config: dict | None) -> dict:
    cfg = {sec: dict(vals) for sec, vals in DEFAULT_CONFIG.items()}
    for sec, vals in (config or {}).items():
        if sec in cfg and isinstance(vals, dict):
            cfg[sec].update(vals)
    return cfg


def instrument_for(cfg: dict, year: int) -> str:
    s = cfg["survey"]
    return (s.get("instrument_by_year") or {}).get(str(year), s["instrument"])


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------


def _simple_csv_rows(path: str):
    """Reference CSVs (regions, master): header + records via the same RFC 4180 splitter."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    recs = list(split_csv(data, ord(","), 0, 1))
    if not recs:
        return [], []
    header = [trim(f.decode("utf-8")).lower() for f in recs[0][2]]
    rows = []
    for line, raw, fields, err in recs[1:]:
        if err or len(fields) != len(header):
            raise ValueError(f"{path}:{line}: malformed reference row")
        rows.append((line, {h: trim(f.decode("utf-8")) for h, f in zip(header, fields)}))
    return header, rows


def load_regions(path: str) -> dict:
    _, rows = _simple_csv_rows(path)
    regions = {}
    for _, r in rows:
        regions[r["region_code"]] = {
            "name": r["region_name"],
            "level": r["level"],
            "province_code": r["province_code"],
        }
    return regions


def load_master(path: str) -> dict:
    _, rows = _simple_csv_rows(path)
    master = {}
    for _, r in rows:
        code = r["institution_code"].upper()
        master[code] = {
            "institution_code": code,
            "institution_name": r["institution_name"],
            "institution_type": r["institution_type"],
            "province_code": r["province_code"],
            "district_code": r["district_code"] or None,
            "headcount": int(r["headcount"]),
        }
    return master


# --------------------------------------------------------------------------------------------
# Input discovery (SPEC 2.2)
# --------------------------------------------------------------------------------------------


def list_inputs(input_dir: str):
    matched, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(input_dir):
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, input_dir).replace(os.sep, "/")
            (matched if fn.endswith(INPUT_SUFFIXES) else ignored).append(rel)
    key = lambda r: r.encode("utf-8")  # noqa: E731 - bytewise order of relative path
    return sorted(matched, key=key), sorted(ignored, key=key)


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)  # handles multi-member streams
    return data


# --------------------------------------------------------------------------------------------
# CSV splitter (RFC 4180, bytes level)
# --------------------------------------------------------------------------------------------

_BLANK_BYTES = b" \t\r\x0b\x0c"


def split_csv(data: bytes, delim: int, pos: int, line: int):
    """Yield (line_number, raw_bytes, fields[list of bytes], error_or_None) per record.

    Blank lines (outside quotes) are skipped. ``raw`` excludes the record's final terminator.
    """
    n = len(data)
    DQ, LF, CR = 0x22, 0x0A, 0x0D
    while pos < n:
        j = data.find(b"\n", pos)
        end = n if j < 0 else j
        if data[pos:end].strip(_BLANK_BYTES) == b"":
            if j < 0:
                break
            pos = j + 1
            line += 1
            continue
        start, start_line = pos, line
        fields, buf, err = [], bytearray(), None
        state = "start"  # start | unquoted | quoted | after_quote
        i = pos
        while True:
            if i >= n:
                if state == "quoted":
                    err = err or "unterminated quoted field (quote still open at end of file)"
                fields.append(bytes(buf))
                raw = data[start:n]
                if raw.endswith(b"\r\n"):
                    raw = raw[:-2]
                elif raw.endswith(b"\n"):
                    raw = raw[:-1]
                pos = n
                break
            c = data[i]
            if state == "quoted":
                if c == DQ:
                    if i + 1 < n and data[i + 1] == DQ:
                        buf.append(DQ)
                        i += 2
                        continue
                    state = "after_quote"
                    i += 1
                    continue
                if c == LF:
                    line += 1
                buf.append(c)
                i += 1
                continue
            if c == LF or (c == CR and i + 1 < n and data[i + 1] == LF):
                fields.append(bytes(buf))
                raw = data[start:i]
                i += 1 if c == LF else 2
                line += 1
                pos = i
                break
            if c == delim:
                fields.append(bytes(buf))
                buf = bytearray()
                state = "start"
                i += 1
                continue
            if state == "start":
                if c == DQ:
                    state = "quoted"
                    i += 1
                    continue
                state = "unquoted"
                buf.append(c)
                i += 1
                continue
            if state == "after_quote":
                err = err or "broken quoting: unexpected character after closing quote"
                state = "unquoted"
                buf.append(c)
                i += 1
                continue
            # unquoted
            if c == DQ:
                err = err or "broken quoting: quote inside an unquoted field"
            buf.append(c)
            i += 1
        yield start_line, raw, fields, err


def detect_delimiter(header_line: bytes) -> int:
    counts = {ord(","): header_line.count(b","), ord(";"): header_line.count(b";"),
              ord("\t"): header_line.count(b"\t")}
    best = max(counts.values())
    winners = [d for d, c in counts.items() if c == best]
    return winners[0] if len(winners) == 1 else ord(",")


# --------------------------------------------------------------------------------------------
# Raw records
# --------------------------------------------------------------------------------------------


class Bad:
    """A JSON value of the wrong type for a scalar field (bool, object, array)."""

    def __init__(self, v):
        self.v = v


class JNum(str):
    """A JSON number, kept as its text."""


def _json_value(v):
    if v is None:
        return None
    if isinstance(v, str):
        t = trim(v)
        return t if t else None
    return Bad(v)


def iter_file_records(path: str, rel: str, required_columns):
    """Yield dicts: line, raw (bytes), kind ('malformed'|'encoding'|'ok'), detail, values.

    values maps lower-case field name -> None (absent) | str | Bad | list (JSON array).
    Raises HeaderError for a CSV header that lacks a required column.
    """
    data = read_bytes(path)
    if rel.endswith((".csv", ".csv.gz")):
        yield from _iter_csv(data, rel, required_columns)
    else:
        yield from _iter_jsonl(data)


def _iter_csv(data: bytes, rel: str, required_columns):
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nl = data.find(b"\n")
    first = data if nl < 0 else data[:nl]
    delim = detect_delimiter(first)
    recs = split_csv(data, delim, 0, 1)
    try:
        hline, hraw, hfields, herr = next(recs)
    except StopIteration:
        raise HeaderError(f"{rel}: empty file, no header")
    if herr:
        raise HeaderError(f"{rel}: broken header")
    header = [trim(f.decode("utf-8")).lower() for f in hfields]
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise HeaderError(f"{rel}: header lacks required column {missing[0]}")
    for line, raw, fields, err in recs:
        rec = {"line": line, "raw": raw, "values": None, "detail": None}
        if err:
            rec.update(kind="malformed", detail=err)
        elif len(fields) != len(header):
            rec.update(kind="malformed",
                       detail=f"expected {len(header)} fields, found {len(fields)}")
        else:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                rec.update(kind="encoding", detail="record is not valid UTF-8")
                yield rec
                continue
            vals = {}
            for h, f in zip(header, fields):
                t = trim(f.decode("utf-8"))
                vals[h] = t if t else None
            rec.update(kind="ok", values=vals)
        yield rec


def _reject_constant(s):
    raise ValueError(f"invalid JSON constant {s}")


def _iter_jsonl(data: bytes):
    if data.startswith(b"\xef\xbb\xbf"):  # a BOM at file start is stripped, as for CSV
        data = data[3:]
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for idx, line in enumerate(parts, start=1):
        raw = line[:-1] if line.endswith(b"\r") else line
        if raw.strip(_BLANK_BYTES) == b"":
            continue
        rec = {"line": idx, "raw": raw, "values": None, "detail": None}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rec.update(kind="encoding", detail="line is not valid UTF-8")
            yield rec
            continue
        try:
            obj = json.loads(text, parse_int=JNum, parse_float=JNum,
                             parse_constant=_reject_constant)
        except ValueError as e:
            rec.update(kind="malformed", detail=f"invalid JSON: {e}")
            yield rec
            continue
        if not isinstance(obj, dict):
            rec.update(kind="malformed", detail="JSON value is not an object")
            yield rec
            continue
        vals = {}
        for k, v in obj.items():
            key = trim(k).lower()
            if isinstance(v, list):
                vals[key] = list(v)
            else:
                vals[key] = _json_value(v)
        rec.update(kind="ok", values=vals)
        yield rec


# --------------------------------------------------------------------------------------------
# Field parsers
# --------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?[0-9]+")
_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(Z|z|[+-][0-9]{2}:[0-9]{2})"
)
_NAIVE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_OFFSET_RE = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")
_DISTRICT4_RE = re.compile(r"[0-9]{4}")
_DISTRICT_DOT_RE = re.compile(r"[0-9]{2}\.[0-9]{2}")
_PROVINCE_RE = re.compile(r"[0-9]{2}")
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def parse_int(s):
    if not isinstance(s, str) or not _INT_RE.fullmatch(s):
        return None
    v = int(s)
    if v < I64_MIN or v > I64_MAX:
        return None
    return v


def _days_in_month(y, m):
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return 29 if leap else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_offset(s: str):
    m = _OFFSET_RE.fullmatch(s)
    if not m:
        return None
    hh, mm = int(m.group(2)), int(m.group(3))
    if hh > 23 or mm > 59:
        return None
    sec = hh * 3600 + mm * 60
    return -sec if m.group(1) == "-" else sec


def parse_instant(s, default_offset_s: int):
    """Nanoseconds since the Unix epoch, or None."""
    if not isinstance(s, str):
        return None
    m = _RFC3339_RE.fullmatch(s)
    frac = None
    if m:
        y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
        frac = m.group(7)
        off_s = m.group(8)
        if off_s in ("Z", "z"):
            off = 0
        else:
            off = parse_offset(off_s)
            if off is None:
                return None
    else:
        m = _NAIVE_RE.fullmatch(s)
        if not m:
            return None
        y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
        off = default_offset_s
    if not (1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo)):
        return None
    if hh > 23 or mi > 59 or ss > 59:
        return None
    # RFC 3339 allows any number of fraction digits: nanosecond precision, extra digits cut
    nanos = int(frac[:9].ljust(9, "0")) if frac else 0
    secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off
    return secs * 1_000_000_000 + nanos


def normalize_district(s):
    if not isinstance(s, str):
        return None
    if _DISTRICT4_RE.fullmatch(s):
        return s
    if _DISTRICT_DOT_RE.fullmatch(s):
        return s[:2] + s[3:]
    return None


def raw_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    enc = text.encode("utf-8")
    if len(enc) <= RAW_LIMIT:
        return text
    cut = enc[:RAW_LIMIT]
    return cut.decode("utf-8", "ignore")  # drops a trailing partial character


# --------------------------------------------------------------------------------------------
# Validation (SPEC 3)
# --------------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, year, cfg, master, regions, instrument):
        s = cfg["survey"]
        self.year = year
        self.instrument = instrument
        self.master = master
        self.regions = regions
        self.max_picks = int(s["max_picks"])
        self.catalogue = set(BEHAVIOURS) | {str(d).strip().upper() for d in s["distractors"]}
        self.lmin = int(s["likert_min"])
        self.lmax = int(s["likert_max"])
        self.offset = parse_offset(s["default_utc_offset"])
        self.min_duration = int(s["min_duration_seconds"])
        self.reject_straight = bool(s["reject_straightliners"])
        self.required = BASE_REQUIRED + (
            ["current_culture"] if instrument == "votes" else LIKERT_FIELDS)


def validate(vals: dict, ctx: Ctx):
    """Return ('reject', reason, field_or_None, detail) or ('ok', accepted_dict)."""
    get = vals.get

    # missing_field, in field-table order
    for f in ctx.required:
        if get(f) is None:
            return ("reject", "missing_field", f, f"required field {f} is missing or empty")

    # invalid_value, in field-table order
    def bad(f, why):
        return ("reject", "invalid_value", f, f"{f}: {why}")

    rid = get("response_id")
    if not isinstance(rid, str) or isinstance(rid, Bad):
        return bad("response_id", "not a string")
    if len(rid) > 64:
        return bad("response_id", "longer than 64 characters")
    key = get("respondent_key")
    if not isinstance(key, str):
        return bad("respondent_key", "not a string")
    if len(key) > 128:
        return bad("respondent_key", "longer than 128 characters")
    instant = parse_instant(get("submitted_at"), ctx.offset)
    if instant is None:
        return bad("submitted_at", "not an RFC 3339 or 'YYYY-MM-DD HH:MM:SS' timestamp")
    sy = parse_int(get("survey_year"))
    if sy is None:
        return bad("survey_year", "not an integer")
    inst = get("institution_code")
    if not isinstance(inst, str):
        return bad("institution_code", "not a string")
    inst = inst.upper()
    district = normalize_district(get("work_district_code"))
    if district is None:
        return bad("work_district_code", "not DDDD or DD.DD")
    prov = get("work_province_code")
    if prov is not None and (not isinstance(prov, str) or not _PROVINCE_RE.fullmatch(prov)):
        return bad("work_province_code", "not two digits")
    dur_raw = get("duration_seconds")
    duration = None
    if dur_raw is not None:
        duration = parse_int(dur_raw)
        if duration is None or duration < 0:
            return bad("duration_seconds", "not an integer >= 0")
    picks = answers = None
    if ctx.instrument == "votes":
        cc = get("current_culture")
        if isinstance(cc, list):
            if any(type(e) is not str for e in cc):
                return bad("current_culture", "array element is not a string")
            tokens = [trim(e).upper() for e in cc]
        elif isinstance(cc, str):
            tokens = [trim(t).upper() for t in cc.split("|")]
        else:
            return bad("current_culture", "not a string or array of strings")
        picks = tokens
    else:
        answers = []
        for f in LIKERT_FIELDS:
            a = parse_int(get(f))
            if a is None or not (ctx.lmin <= a <= ctx.lmax):
                return bad(f, f"not an integer in [{ctx.lmin}, {ctx.lmax}]")
            answers.append(a)

    if sy != ctx.year:
        return ("reject", "year_mismatch", None, f"survey_year {sy} is not {ctx.year}")
    if inst not in ctx.master:
        return ("reject", "unknown_institution", None, f"institution {inst} not in master")
    reg = ctx.regions.get(district)
    if reg is None or reg["level"] != "district":
        return ("reject", "unknown_region", None, f"district {district} not in regions")
    if prov is not None and prov != reg["province_code"]:
        return ("reject", "region_mismatch", None,
                f"work_province_code {prov} but district {district} is in {reg['province_code']}")
    if picks is not None:
        if len(picks) == 0:
            return ("reject", "invalid_picks", None, "no picks")
        unknown = [t for t in picks if t not in ctx.catalogue]
        if unknown:
            return ("reject", "invalid_picks", None, f"unknown code {unknown[0]!r}")
        if len(set(picks)) != len(picks):
            return ("reject", "invalid_picks", None, "repeated code")
        if len(picks) > ctx.max_picks:
            return ("reject", "invalid_picks", None, f"{len(picks)} picks > {ctx.max_picks}")
    if duration is not None and duration < ctx.min_duration:
        return ("reject", "speeder", None, f"duration {duration} < {ctx.min_duration}")
    if answers is not None and ctx.reject_straight and len(set(answers)) == 1:
        return ("reject", "straightliner", None, f"all answers {answers[0]}")

    return ("ok", {
        "response_id": rid,
        "respondent_key": key,
        "instant": instant,
        "institution_code": inst,
        "district": district,
        "picks": picks,
        "answers": answers,
    })


def quarantine_response_id(vals):
    if not vals:
        return None
    v = vals.get("response_id")
    if isinstance(v, str) and v:
        return v
    return None


# --------------------------------------------------------------------------------------------
# Scoring (SPEC 4)
# --------------------------------------------------------------------------------------------


def score_respondent(acc, ctx):
    """Return (x[7], y[21], s) as Fractions."""
    if ctx.instrument == "votes":
        picked = set(acc["picks"])
        y = [Fraction(1 if b in picked else 0) for b in BEHAVIOURS]
        x = [Fraction(1 if any(y[3 * i + j] for j in range(3)) else 0) for i in range(7)]
    else:
        span = ctx.lmax - ctx.lmin
        y = [Fraction(a - ctx.lmin, span) for a in acc["answers"]]
        x = [(y[3 * i] + y[3 * i + 1] + y[3 * i + 2]) / 3 for i in range(7)]
    s = sum(x, Fraction(0)) / 7
    return x, y, s


def _f(q):
    return None if q is None else float(q)


# --------------------------------------------------------------------------------------------
# compute
# --------------------------------------------------------------------------------------------


def prev_from(result: dict) -> dict:
    """Previous-year published values, as ``compute`` expects them in ``prev``."""
    out = {"institution_index": {}, "district_index": {}, "province_index": {},
           "national_index": {}}
    for r in result["institution_index"]:
        out["institution_index"][r["institution_code"]] = {"index_overall": r["index_overall"]}
    for table, key in (("district_index", "district_code"), ("province_index", "province_code"),
                       ("national_index", "country_code")):
        for r in result[table]:
            out[table][r[key]] = {"index_overall": r["index_overall"],
                                  "inst_mean_overall": r["inst_mean_overall"]}
    return out


def _delta(cur, prev):
    if cur is None or prev is None:
        return None
    return cur - prev


def compute(year, master_path, regions_path, input_dir, config, prev=None) -> dict:
    cfg = normalize_config(config)
    regions = load_regions(regions_path)
    master = load_master(master_path)
    instrument = instrument_for(cfg, year)
    ctx = Ctx(year, cfg, master, regions, instrument)
    est = cfg["estimation"]
    e = Fraction(str(est["margin_of_error"]))
    min_floor = int(est["min_floor"])
    min_n = int(est["suppression_min_n"])
    prev = prev or {}

    files, ignored = list_inputs(input_dir)
    if not files:
        raise FileNotFoundError(f"no input file under {input_dir}")

    # ---- read + validate -------------------------------------------------------------------
    quarantine = []  # dicts
    file_counts = {}
    passed = []  # accepted-so-far records in input order
    order = 0
    for rel in files:
        fc = {"records_read": 0, "accepted": 0, "quarantined": {}}
        file_counts[rel] = fc
        for rec in iter_file_records(os.path.join(input_dir, rel), rel, ctx.required):
            fc["records_read"] += 1
            order += 1
            base = {"source_file": rel, "line_number": rec["line"], "raw": raw_text(rec["raw"])}
            if rec["kind"] == "malformed":
                quarantine.append({**base, "response_id": None, "reason": "malformed_row",
                                   "field": None, "detail": rec["detail"]})
                continue
            if rec["kind"] == "encoding":
                quarantine.append({**base, "response_id": None, "reason": "invalid_encoding",
                                   "field": None, "detail": rec["detail"]})
                continue
            res = validate(rec["values"], ctx)
            if res[0] == "reject":
                _, reason, field, detail = res
                quarantine.append({**base, "response_id": quarantine_response_id(rec["values"]),
                                   "reason": reason, "field": field, "detail": detail})
                continue
            acc = res[1]
            acc["order"] = order
            acc["base"] = base
            passed.append(acc)

    # ---- dedup ------------------------------------------------------------------------------
    by_key = {}
    for a in passed:
        by_key.setdefault(a["respondent_key"].encode("utf-8"), []).append(a)
    kept_ids = set()
    for group in by_key.values():
        best = group[0]
        for a in group[1:]:
            ka = (a["instant"], a["response_id"].encode("utf-8"))
            kb = (best["instant"], best["response_id"].encode("utf-8"))
            if ka > kb:  # strictly greater: ties keep the earlier in input order
                best = a
        kept_ids.add(id(best))
        for a in group:
            if a is not best:
                quarantine.append({**a["base"], "response_id": a["response_id"],
                                   "reason": "superseded", "field": None,
                                   "kept_response_id": best["response_id"],
                                   "detail": f"superseded by response_id {best['response_id']}"})
    accepted = []
    seen_rid = {}
    for a in passed:  # input order
        if id(a) not in kept_ids:
            continue
        rk = a["response_id"].encode("utf-8")
        if rk in seen_rid:
            first = seen_rid[rk]
            quarantine.append({**a["base"], "response_id": a["response_id"],
                               "reason": "duplicate_response_id", "field": None,
                               "detail": f"response_id {a['response_id']} already kept at "
                                         f"{first['base']['source_file']}:"
                                         f"{first['base']['line_number']}"})
            continue
        seen_rid[rk] = a
        accepted.append(a)

    for q in quarantine:
        fc = file_counts[q["source_file"]]["quarantined"]
        fc[q["reason"]] = fc.get(q["reason"], 0) + 1
    for a in accepted:
        file_counts[a["base"]["source_file"]]["accepted"] += 1
    quarantine.sort(key=lambda q: (q["source_file"].encode("utf-8"), q["line_number"]))

    # ---- score ------------------------------------------------------------------------------
    resp_by_inst = {code: [] for code in master}
    for a in accepted:
        x, y, s = score_respondent(a, ctx)
        resp_by_inst[a["institution_code"]].append(
            {"x": x, "y": y, "s": s, "district": a["district"]})

    # ---- institutions (5.1) -----------------------------------------------------------------
    inst_rows, inst_exact = [], {}
    for code in sorted(master, key=lambda c: c.encode("utf-8")):
        m = master[code]
        rs = resp_by_inst[code]
        n, N = len(rs), m["headcount"]
        slovin = math.ceil(Fraction(N) / (1 + N * e * e))
        min_req = min(N, max(min_floor, slovin))
        eligible = n >= min_req
        suppressed = n < min_n
        ex = {"n": n, "N": N, "eligible": eligible, "suppressed": suppressed,
              "type": m["institution_type"], "resp": rs}
        if n > 0:
            ex["index_v"] = [100 * sum((r["x"][i] for r in rs), Fraction(0)) / n
                             for i in range(7)]
            ssum = sum((r["s"] for r in rs), Fraction(0))
            ex["index_overall"] = 100 * ssum / n
            ex["beh"] = [100 * sum((r["y"][j] for r in rs), Fraction(0)) / n
                         for j in range(21)]
            if n >= 2:
                s2 = (sum((r["s"] * r["s"] for r in rs), Fraction(0)) - ssum * ssum / n) / (n - 1)
                f = min(Fraction(1), Fraction(n, N))
                ex["se"] = 100 * math.sqrt(float((1 - f) * s2 / n))
            else:
                ex["se"] = None
        else:
            ex["index_v"] = [None] * 7
            ex["index_overall"] = None
            ex["beh"] = [None] * 21
            ex["se"] = None
        inst_exact[code] = ex

        row = {
            "institution_code": code,
            "institution_name": m["institution_name"],
            "institution_type": m["institution_type"],
            "province_code": m["province_code"],
            "province_name": regions[m["province_code"]]["name"],
            "district_code": m["district_code"],
            "district_name": regions[m["district_code"]]["name"] if m["district_code"] else None,
            "headcount": N,
            "n_respondents": n,
            "response_rate": n / N,
            "headcount_exceeded": n > N,
            "min_required": min_req,
            "eligible": eligible,
            "suppressed": suppressed,
        }
        pub = not suppressed
        idx_v = [_f(v) if pub else None for v in ex["index_v"]]
        idx = _f(ex["index_overall"]) if pub else None
        se = ex["se"] if pub else None
        for v, val in zip(VALUES, idx_v):
            row[f"index_{v}"] = val
        row["index_overall"] = idx
        row["se_overall"] = se
        row["ci95_low"] = max(0.0, idx - 1.96 * se) if se is not None else None
        row["ci95_high"] = min(100.0, idx + 1.96 * se) if se is not None else None
        row["category"] = category(idx)
        for v, val in zip(VALUES, idx_v):
            row[f"category_{v}"] = category(val)
        row["rank_national"] = None
        row["rank_in_type"] = None
        p = prev.get("institution_index", {}).get(code)
        row["prev_index_overall"] = p["index_overall"] if p else None
        row["delta_index_overall"] = _delta(idx, row["prev_index_overall"])
        row["year"] = year
        inst_rows.append(row)

    rankable = [(r["institution_code"], r["index_overall"] if r["eligible"] else None)
                for r in inst_rows]
    rn = competition_ranks(rankable)
    for r in inst_rows:
        r["rank_national"] = rn[r["institution_code"]]
    for t in {r["institution_type"] for r in inst_rows}:
        rt = competition_ranks([(c, v) for (c, v), r in zip(rankable, inst_rows)
                                if r["institution_type"] == t])
        for r in inst_rows:
            if r["institution_type"] == t:
                r["rank_in_type"] = rt[r["institution_code"]]

    # ---- domains (5.2) ----------------------------------------------------------------------
    # per domain, per eligible institution: counts and sums of that institution's respondents in D
    dom = {"district": {}, "province": {}, "national": {}}
    for code, ex in inst_exact.items():
        if not ex["eligible"] or ex["n"] == 0:
            continue
        for r in ex["resp"]:
            for level, key in (("district", r["district"]), ("province", r["district"][:2]),
                               ("national", "ID")):
                d = dom[level].setdefault(key, {}).setdefault(
                    code, {"m": 0, "A": Fraction(0), "B": Fraction(0),
                           "X": [Fraction(0)] * 7, "Y": [Fraction(0)] * 21})
                d["m"] += 1
                d["A"] += r["s"]
                d["B"] += r["s"] * r["s"]
                d["X"] = [a + b for a, b in zip(d["X"], r["x"])]
                d["Y"] = [a + b for a, b in zip(d["Y"], r["y"])]

    def seated(level, key):
        out = []
        for code, m in master.items():
            if level == "district" and m["district_code"] != key:
                continue
            if level == "province" and m["province_code"] != key:
                continue
            ex = inst_exact[code]
            if ex["eligible"] and not ex["suppressed"]:
                out.append(ex)
        return out

    def domain_metrics(level, key, parts):
        W = Fraction(0)
        n_resp = 0
        SX = [Fraction(0)] * 7
        SY = [Fraction(0)] * 21
        SS = Fraction(0)
        for code, d in parts.items():
            ex = inst_exact[code]
            w = Fraction(ex["N"], ex["n"])
            W += w * d["m"]
            n_resp += d["m"]
            SS += w * d["A"]
            SX = [a + w * b for a, b in zip(SX, d["X"])]
            SY = [a + w * b for a, b in zip(SY, d["Y"])]
        R = SS / W
        V = Fraction(0)
        for code, d in parts.items():
            ex = inst_exact[code]
            nh, Nh = ex["n"], ex["N"]
            if nh < 2:
                continue
            w = Fraction(Nh, nh)
            sz = w * (d["A"] - d["m"] * R) / W
            sz2 = w * w * (d["B"] - 2 * R * d["A"] + d["m"] * R * R) / (W * W)
            fh = min(Fraction(1), Fraction(nh, Nh))
            V += (1 - fh) * Fraction(nh, nh - 1) * (sz2 - sz * sz / nh)
        suppressed = n_resp < min_n
        row = {"n_respondents": n_resp, "n_institutions": len(parts),
               "population_estimate": float(W), "suppressed": suppressed}
        pub = not suppressed
        idx_v = [float(100 * sx / W) if pub else None for sx in SX]
        idx = float(100 * R) if pub else None
        se = 100 * math.sqrt(float(V)) if pub else None
        for v, val in zip(VALUES, idx_v):
            row[f"index_{v}"] = val
        row["index_overall"] = idx
        row["se_overall"] = se
        row["ci95_low"] = max(0.0, idx - 1.96 * se) if se is not None else None
        row["ci95_high"] = min(100.0, idx + 1.96 * se) if se is not None else None
        row["category"] = category(idx)
        for v, val in zip(VALUES, idx_v):
            row[f"category_{v}"] = category(val)
        st = seated(level, key)
        row["n_institutions_seated"] = len(st)
        if st and pub:
            for i, v in enumerate(VALUES):
                row[f"inst_mean_{v}"] = float(sum((x["index_v"][i] for x in st), Fraction(0))
                                              / len(st))
            row["inst_mean_overall"] = float(sum((x["index_overall"] for x in st), Fraction(0))
                                             / len(st))
        else:
            for v in VALUES:
                row[f"inst_mean_{v}"] = None
            row["inst_mean_overall"] = None
        row["inst_mean_category"] = category(row["inst_mean_overall"])
        beh = [float(100 * sy / W) if pub else None for sy in SY]
        return row, beh

    def add_prev(row, table, key):
        p = prev.get(table, {}).get(key)
        row["prev_index_overall"] = p["index_overall"] if p else None
        row["delta_index_overall"] = _delta(row["index_overall"], row["prev_index_overall"])
        row["prev_inst_mean_overall"] = p["inst_mean_overall"] if p else None
        row["delta_inst_mean_overall"] = _delta(row["inst_mean_overall"],
                                                row["prev_inst_mean_overall"])

    district_rows, province_rows, national_rows = [], [], []
    beh_rows = {"institution": [], "district": [], "province": [], "national": []}

    for key in sorted(dom["district"], key=lambda c: c.encode("utf-8")):
        metrics, beh = domain_metrics("district", key, dom["district"][key])
        prov = key[:2]
        row = {"district_code": key, "district_name": regions[key]["name"],
               "province_name": regions[regions[key]["province_code"]]["name"], **metrics,
               "rank_national": None, "rank_in_province": None}
        add_prev(row, "district_index", key)
        row["year"] = year
        row["province_code"] = prov
        district_rows.append(row)
        beh_rows["district"].append((key, metrics["n_respondents"], beh))
    rn = competition_ranks([(r["district_code"], r["index_overall"]) for r in district_rows])
    for r in district_rows:
        r["rank_national"] = rn[r["district_code"]]
    for prov in {r["province_code"] for r in district_rows}:
        rp = competition_ranks([(r["district_code"], r["index_overall"])
                                for r in district_rows if r["province_code"] == prov])
        for r in district_rows:
            if r["province_code"] == prov:
                r["rank_in_province"] = rp[r["district_code"]]

    for key in sorted(dom["province"], key=lambda c: c.encode("utf-8")):
        metrics, beh = domain_metrics("province", key, dom["province"][key])
        row = {"province_code": key, "province_name": regions[key]["name"], **metrics,
               "rank_national": None}
        add_prev(row, "province_index", key)
        row["year"] = year
        province_rows.append(row)
        beh_rows["province"].append((key, metrics["n_respondents"], beh))
    rn = competition_ranks([(r["province_code"], r["index_overall"]) for r in province_rows])
    for r in province_rows:
        r["rank_national"] = rn[r["province_code"]]

    for key in sorted(dom["national"]):
        metrics, beh = domain_metrics("national", key, dom["national"][key])
        row = {"country_code": "ID", **metrics}
        add_prev(row, "national_index", "ID")
        row["year"] = year
        national_rows.append(row)
        beh_rows["national"].append(("ID", metrics["n_respondents"], beh))

    for r in inst_rows:
        ex = inst_exact[r["institution_code"]]
        beh = [None if r["suppressed"] else _f(b) for b in ex["beh"]]
        beh_rows["institution"].append((r["institution_code"], r["n_respondents"], beh))

    behaviour_scores = []
    for level in ("institution", "district", "province", "national"):
        for unit, n_resp, beh in sorted(beh_rows[level], key=lambda t: t[0].encode("utf-8")):
            for j, b in enumerate(BEHAVIOURS):
                behaviour_scores.append({"unit_code": unit, "behaviour_code": b,
                                         "value_code": VALUE_OF[b], "n_respondents": n_resp,
                                         "score": beh[j], "year": year, "level": level})

    # column order (SPEC 6.1) + partition columns at the end
    for rows, cols in ((inst_rows, INSTITUTION_COLUMNS + ["year"]),
                       (district_rows, DISTRICT_COLUMNS + ["year", "province_code"]),
                       (province_rows, PROVINCE_COLUMNS + ["year"]),
                       (national_rows, NATIONAL_COLUMNS + ["year"])):
        for i, r in enumerate(rows):
            assert set(r) == set(cols), (set(r) ^ set(cols))
            rows[i] = {c: r[c] for c in cols}

    n_read = sum(fc["records_read"] for fc in file_counts.values())
    n_quar = len(quarantine)
    n_sup = sum(1 for q in quarantine if q["reason"] == "superseded")
    return {
        "year": year,
        "instrument": instrument,
        "institution_index": inst_rows,
        "district_index": district_rows,
        "province_index": province_rows,
        "national_index": national_rows,
        "behaviour_scores": behaviour_scores,
        "quarantine": quarantine,
        "file_counts": file_counts,
        "ignored_files": ignored,
        "totals": {"records_read": n_read, "accepted": len(accepted), "quarantined": n_quar},
        "gate_ratio": (n_quar - n_sup) / n_read if n_read else 0.0,
    }


# --------------------------------------------------------------------------------------------
# Column lists (SPEC 6.1)
# --------------------------------------------------------------------------------------------

_IDX = [f"index_{v}" for v in VALUES] + ["index_overall", "se_overall", "ci95_low",
                                          "ci95_high", "category"] + [
    f"category_{v}" for v in VALUES]

INSTITUTION_COLUMNS = [
    "institution_code", "institution_name", "institution_type", "province_code",
    "province_name", "district_code", "district_name", "headcount", "n_respondents",
    "response_rate", "headcount_exceeded", "min_required", "eligible", "suppressed",
] + _IDX + ["rank_national", "rank_in_type", "prev_index_overall", "delta_index_overall"]

_DOMAIN_HEAD = ["n_respondents", "n_institutions", "population_estimate", "suppressed"] + _IDX + [
    "n_institutions_seated"] + [f"inst_mean_{v}" for v in VALUES] + [
    "inst_mean_overall", "inst_mean_category"]
_DOMAIN_TAIL = ["prev_index_overall", "delta_index_overall", "prev_inst_mean_overall",
                "delta_inst_mean_overall"]

DISTRICT_COLUMNS = ["district_code", "district_name", "province_name"] + _DOMAIN_HEAD + [
    "rank_national", "rank_in_province"] + _DOMAIN_TAIL
PROVINCE_COLUMNS = ["province_code", "province_name"] + _DOMAIN_HEAD + [
    "rank_national"] + _DOMAIN_TAIL
NATIONAL_COLUMNS = ["country_code"] + _DOMAIN_HEAD + _DOMAIN_TAIL
BEHAVIOUR_COLUMNS = ["unit_code", "behaviour_code", "value_code", "n_respondents", "score"]
QUARANTINE_COLUMNS = ["source_file", "line_number", "response_id", "reason", "detail", "raw"]

# physical type per column: S string, I int64, F double, B bool
_TYPES = {}
for _c in INSTITUTION_COLUMNS + DISTRICT_COLUMNS + PROVINCE_COLUMNS + NATIONAL_COLUMNS + \
        BEHAVIOUR_COLUMNS + QUARANTINE_COLUMNS:
    if _c in ("headcount", "n_respondents", "min_required", "n_institutions",
              "n_institutions_seated", "line_number") or _c.startswith("rank_"):
        _TYPES[_c] = "I"
    elif _c in ("headcount_exceeded", "eligible", "suppressed"):
        _TYPES[_c] = "B"
    elif _c.startswith(("index_", "inst_mean_", "prev_", "delta_", "ci95_")) or _c in (
            "response_rate", "se_overall", "population_estimate", "score"):
        _TYPES[_c] = "S" if _c == "inst_mean_category" else "F"
    else:
        _TYPES[_c] = "S"
COLUMN_TYPES = dict(_TYPES)

TABLE_COLUMNS = {
    "institution_index": INSTITUTION_COLUMNS,
    "district_index": DISTRICT_COLUMNS,
    "province_index": PROVINCE_COLUMNS,
    "national_index": NATIONAL_COLUMNS,
    "behaviour_scores": BEHAVIOUR_COLUMNS,
}
