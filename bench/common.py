"""Shared by the benchmarks: seeded synthetic rulesets and requests, timing and output helpers.

Nothing here is downloaded or committed: every script builds its data from a seed, so a rerun
on the same code gives the same inputs.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pycountry  # noqa: E402

from service.inputs import Article, Location, Reader  # noqa: E402
from service.model import Notice, Region, Rule  # noqa: E402
from service.ruleset import Ruleset  # noqa: E402

SEED = 20250601


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `seconds`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


PUBLISHERS = [f"pub{i:02d}" for i in range(20)]
# 60 countries with a realistic audience skew: the first ones are read most.
COUNTRIES = (
    "RU UA US DE GB FR PL KZ BY GE AM AZ MD LT LV EE FI SE NO CZ SK HU RO BG RS HR SI BA ME MK AL XK "
    "GR TR IT ES PT NL BE AT CH IE DK IS UZ KG TJ TM IR AF PK IN CN JP KR CA MX BR AR AU IL"
).split()
SECTIONS = ["news", "politics", "world", "economy", "culture", "sport", "opinion", "science", "video", "live"]
TYPES = ["article", "video", "podcast", "live", "gallery"]
TAGS = [f"tag{i:03d}" for i in range(300)]
TEXT_LANGUAGES = ["en", "ru", "uk", "de", "fr", "pl", "kk", "be", "ka", "hy"]
READER_LANGUAGES = ["en", "en-us", "ru", "ru-ru", "uk", "uk-ua", "de", "fr", "pl", "kk", "be", "es", "pt-br"]
EFFECTS = ["discourage_sharing", "hide_share_buttons", "hide_comments", "withhold_article"]
EPOCH = datetime(2018, 1, 1, tzinfo=UTC)
MAX_STANDING_RULES = 150
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def subdivisions(country: str, limit: int = 8) -> list[str]:
    """Up to `limit` first-level ISO 3166-2 codes of `country` (XK has none in pycountry)."""
    found = sorted(
        s.code for s in pycountry.subdivisions.get(country_code=country) or () if s.parent_code is None
    )
    return found[:limit]


SUBDIVISIONS = {c: subdivisions(c) for c in COUNTRIES}


def zipf_choice(rng: random.Random, items: Sequence[Any], s: float = 1.1) -> Any:
    """An item drawn with probability proportional to 1 / rank**s: the head is common."""
    weights = _weights(len(items), s)
    return rng.choices(items, cum_weights=weights)[0]


_WEIGHTS: dict[tuple[int, float], list[float]] = {}


def _weights(n: int, s: float) -> list[float]:
    if (n, s) not in _WEIGHTS:
        total, cumulative = 0.0, []
        for rank in range(1, n + 1):
            total += 1 / rank**s
            cumulative.append(total)
        _WEIGHTS[n, s] = cumulative
    return _WEIGHTS[n, s]


def _day(rng: random.Random) -> str:
    return (EPOCH + timedelta(days=rng.randrange(0, 12 * 365))).date().isoformat()


def publishers(n: int) -> list[str]:
    """`n` publisher ids: the first 20 are PUBLISHERS."""
    return [f"pub{i:02d}" for i in range(n)]


def ruleset_data(
    n_rules: int,
    seed: int = SEED,
    *,
    heavy: bool = False,
    publishers: Sequence[str] = PUBLISHERS,
    skew: float = 0.8,
) -> dict[str, list[dict[str, Any]]]:
    """A rule pack as plain data (what the YAML files hold): regions, notices and `n_rules` rules.

    Regions: one per country, subdivision groups (like the occupied parts of Ukraine), country
    groups that include other regions and exclude some subdivisions, and groups of groups.

    `heavy`: most rules are standing rules (no content condition, no cap) over large regions, and
    few are history, so a decision matches many (about 6 at 1,000 rules, 10 times more at 10,000),
    as in the policies peer engines are measured on. More `publishers` spread the same rules thinner:
    with their number proportional to the rule count and `skew=0` (rules and page views spread
    evenly over them), matches per decision stay about constant.
    """
    PUBLISHERS = publishers  # noqa: N806 - the pack's publishers, by the name the code below reads
    spread = len(publishers) / 20  # more publishers: rules for any publisher as many per publisher
    standing_share, standing_cap = (0.5, n_rules) if heavy else (0.3, int(MAX_STANDING_RULES * spread))
    any_share = 0.05 / spread
    rng = random.Random(seed)
    regions: list[dict[str, Any]] = [{"id": f"c-{c.lower()}", "countries": [c]} for c in COUNTRIES]
    with_subdivisions = [c for c in COUNTRIES if SUBDIVISIONS[c]]
    for i in range(20):
        country = rng.choice(with_subdivisions[:30])
        codes = SUBDIVISIONS[country]
        picked = rng.sample(codes, min(len(codes), rng.randint(1, 4)))
        regions.append({"id": f"sub-{i}", "subdivisions": picked})
    for i in range(15):
        members = rng.sample([r["id"] for r in regions[:60]], rng.randint(2, 6))
        group: dict[str, Any] = {"id": f"group-{i}", "include": members}
        if rng.random() < 0.4:
            country = members[0].removeprefix("c-").upper()
            if SUBDIVISIONS.get(country):
                group["exclude"] = {"subdivisions": rng.sample(SUBDIVISIONS[country], 1)}
        if rng.random() < 0.3:
            group["include"].append(f"sub-{rng.randrange(20)}")
        regions.append(group)
    for i in range(5):
        regions.append(
            {"id": f"bloc-{i}", "include": rng.sample([f"group-{j}" for j in range(15)], rng.randint(2, 3))}
        )
    region_ids = [r["id"] for r in regions]

    notices: list[dict[str, Any]] = []
    for i in range(max(3, n_rules // 8)):
        langs = ["en", *rng.sample(TEXT_LANGUAGES[1:], rng.randint(0, 3))]
        notice: dict[str, Any] = {
            "id": f"notice-{i:05d}",
            "severity": rng.choice(["legal", "warning", "info"]),
            "priority": rng.randint(0, 3),
            "placement": rng.choice(["top", "bottom", "banner"]),
            "default_language": "en",
            "texts": {
                lang: {
                    "title": f"Notice {i} ({lang})",
                    "body": f"Body of notice {i} in {lang}. " * 4,
                    **({"link": f"https://example.org/notices/{i}"} if i % 3 == 0 else {}),
                }
                for lang in langs
            },
        }
        if i > 0 and rng.random() < 0.05:
            notice["supersedes"] = [f"notice-{rng.randrange(i):05d}"]
        notices.append(notice)

    rules: list[dict[str, Any]] = []
    standing = 0
    for i in range(n_rules):
        article: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.95 - any_share:
            article["publisher"] = [zipf_choice(rng, PUBLISHERS, skew)]
        elif roll < 1 - any_share:
            article["publisher"] = rng.sample(PUBLISHERS, 2)
        # Standing rules (a publisher's notice for a place, whatever the article) are as many
        # as publishers x places x notice kinds allow: capped. Every other rule is about some
        # content: tags, a section, a type or a language.
        if rng.random() < standing_share and standing < standing_cap:
            standing += 1
            if rng.random() < 0.2:
                article["tags"] = {"none": rng.sample(TAGS, 1)}
        else:
            tags: dict[str, Any] = {}
            if rng.random() < 0.7:
                tags["any"] = rng.sample(TAGS, rng.randint(1, 3))
            if rng.random() < 0.1:
                tags["all"] = rng.sample(TAGS, 2)
            if rng.random() < 0.15:
                tags["none"] = rng.sample(TAGS, 1)
            if tags:
                article["tags"] = tags
            if rng.random() < 0.3 or "any" not in tags:
                article["section"] = rng.sample(SECTIONS, rng.randint(1, 2))
            if rng.random() < 0.15:
                article["language"] = rng.sample(TEXT_LANGUAGES, rng.randint(1, 2))
            if rng.random() < 0.15:
                article["type"] = rng.sample(TYPES, rng.randint(1, 2))
        reader: dict[str, Any] = {}
        if rng.random() < 0.92:
            wide = region_ids[-20:] if heavy else region_ids  # groups and blocs: many countries each
            reader["regions"] = rng.sample(wide, rng.randint(1, 2))
        if rng.random() < 0.08:
            reader["unknown_location"] = "show"
        if rng.random() < 0.08:
            reader["anonymized"] = "show"
        if rng.random() < 0.05 or not reader:
            reader["languages"] = [rng.choice(TEXT_LANGUAGES)]
        # Periods: a third are history (ended versions kept for audits), some start later.
        effective: dict[str, str] = {}
        roll = rng.random()
        if roll < (0.05 if heavy else 0.35):
            start, end = sorted([_day(rng), _day(rng)])
            effective = {"from": start, "until": end} if start != end else {"from": start}
        elif roll < 0.65:
            effective = {"from": _day(rng)}
        elif roll < 0.7:
            effective = {"until": _day(rng)}
        rule: dict[str, Any] = {
            "id": f"rule-{i:05d}",
            "notice": rng.choice(notices)["id"],
            "reader": reader,
        }
        if article:
            rule["article"] = article
        if effective:
            rule["effective"] = effective
        if rng.random() < 0.3:
            rule["effects"] = rng.sample(EFFECTS, 1)
        rules.append(rule)
    return {"regions": regions, "notices": notices, "rules": rules}


def build_ruleset(n_rules: int, seed: int = SEED, **options: Any) -> Ruleset:
    """The synthetic rule pack as a validated Ruleset (as the loader would build it); `options`
    as for `ruleset_data`."""
    data = ruleset_data(n_rules, seed, **options)
    return Ruleset.build(
        [Region.model_validate(r) for r in data["regions"]],
        [Notice.model_validate(n) for n in data["notices"]],
        [Rule.model_validate(r) for r in data["rules"]],
    )


def write_rules(directory: Path, n_rules: int, seed: int = SEED, per_file: int = 1000) -> Path:
    """The synthetic pack as rule files (JSON is YAML too), split so no file is too big."""
    data = ruleset_data(n_rules, seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "regions.yaml").write_text(json.dumps({"regions": data["regions"]}, indent=1))
    (directory / "notices.yaml").write_text(json.dumps({"notices": data["notices"]}, indent=1))
    rules = data["rules"]
    for start in range(0, len(rules), per_file):
        chunk = {"rules": rules[start : start + per_file]}
        (directory / f"rules-{start // per_file:03d}.yaml").write_text(json.dumps(chunk, indent=1))
    return directory


def requests(
    n: int, seed: int = SEED + 1, vary: float = 1.0, publishers: Sequence[str] = PUBLISHERS, skew: float = 0.8
) -> list[tuple[Article, Reader, datetime]]:
    """`n` page views: popular publishers, articles, places and languages come up more often.

    Articles come from a pool per publisher (a page is viewed many times) and readers from a
    pool of places; `vary` scales the pool sizes (1.0: about 2,000 articles, 400 places)."""
    rng = random.Random(seed)
    n_articles = max(1, int(2000 * vary))
    pool: list[Article] = []
    for i in range(n_articles):
        publisher = zipf_choice(rng, publishers, skew) if rng.random() < 0.98 else f"other{i % 7}"
        pool.append(
            Article(
                publisher=publisher,
                id=str(i),
                section=rng.choice(SECTIONS) if rng.random() < 0.9 else None,
                tags=frozenset(zipf_choice(rng, TAGS, 0.7) for _ in range(rng.randint(0, 5))),
                language=rng.choice(["en", "ru", "uk", "de", "en-gb", None]),
                type=rng.choice([*TYPES, None]),
            )
        )
    places: list[Location] = []
    for _ in range(max(1, int(400 * vary))):
        roll = rng.random()
        if roll < 0.08:
            places.append(Location(source="unknown", anonymized=rng.random() < 0.3))
            continue
        country = zipf_choice(rng, COUNTRIES, 0.9)
        subs = SUBDIVISIONS[country]
        subdivision = rng.choice(subs) if subs and rng.random() < 0.7 else None
        places.append(Location(country, subdivision, "geoip", rng.random() < 0.03))
    language_sets = [
        (),
        ("en",),
        ("ru",),
        ("ru-ru", "ru"),
        ("uk", "ru"),
        ("en-us", "en"),
        ("de",),
        ("kk", "ru"),
    ]
    out: list[tuple[Article, Reader, datetime]] = []
    for _ in range(n):
        art = zipf_choice(rng, pool, 0.9)
        place = zipf_choice(rng, places, 0.9)
        langs = zipf_choice(rng, language_sets, 1.0)
        # Most calls give no instant (now); a few ask about the past or the future (audits, previews).
        if rng.random() < 0.95:
            at = NOW + timedelta(microseconds=rng.randrange(0, 86_400_000_000))
        else:
            at = EPOCH + timedelta(seconds=rng.randrange(0, 12 * 365 * 86400))
        out.append((art, Reader(place, langs), at))
    return out


def median_us(samples_ns: Sequence[int]) -> float:
    return statistics.median(samples_ns) / 1000


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figure(name: str, value: float, unit: str) -> None:
    """One figure in the plain `name: value unit` form `make bench` prints."""
    print(f"{name}: {value:.3g} {unit}" if abs(value) < 100 else f"{name}: {value:.0f} {unit}", flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
