"""Where the real recordings come from, their checksums, and a parser for their file format.

The development set is the "transfer learning" bundle of five single-resident homes published with
``agnesvanbelle/TL`` (GitHub, commit ``3583db044e47c853f63b4010b149cc97826a6c04``,
``source-code/our_project/data_src/data/``): houses A, B and C are T. van Kasteren's recordings (University of
Amsterdam, 2008–2009: van Kasteren et al., Ubicomp 2008 and "Transferring knowledge of activity recognition across
sensor networks", 2010), houses D and E are E. Munguia Tapia's MIT PlaceLab recordings (2003: "Activity
recognition in the home using simple and ubiquitous sensors", Pervasive 2004). Two independent groups, five homes,
each one person living alone. Every file is a complete copy of the published text version (checked below).

Format (one tab-separated line per sensor firing): ``start_epoch_s  duration_s  sensor_id``; ``.sensor_names``
maps ids to names; ``.activities`` / ``.activity_names`` hold the annotations in the same layout. The epoch
seconds encode the homes' *local* wall-clock time (the original Kasteren files give 25-Feb-2008 00:22 where the
bundle gives 1203898966 = 00:22 UTC), so the evaluation runs with ``tz_offset_s=0``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

import msgspec

from detection.errors import RecordingError

ENV_VAR: Final = "ELDERCARE_DATASETS"
TL_DIR: Final = "tl-kasteren-mit"
TL_REPO: Final = "https://github.com/agnesvanbelle/TL"
TL_COMMIT: Final = "3583db044e47c853f63b4010b149cc97826a6c04"
TL_PATH: Final = "source-code/our_project/data_src/data"

TL_SHA256: Final[dict[str, str]] = {
    "houseA.activities": "36a818c9b36f7f5c1707ae1de0b1232fa619d3b3994d145622ac48b5e89f8b7e",
    "houseA.activity_names": "e970a9e05fe3a109bc82a2d32eafc2e2f022d91c6b7b576ce7d1e99f0c4cfd98",
    "houseA.sensor_names": "e505e7a5b9176998a2b4037e85b0193b815171bded6303e09266668b0ef4cf54",
    "houseA.sensors": "3ad8c900ef4b93be66319b1ba0db4d648f04e4ac6120fa600382018baa7cdad5",
    "houseB.activities": "c6169e7e0cc24e10ff15c3d13bd022ea386261ebf8cc56fb7c6d7b45d0e9f764",
    "houseB.activity_names": "e970a9e05fe3a109bc82a2d32eafc2e2f022d91c6b7b576ce7d1e99f0c4cfd98",
    "houseB.sensor_names": "5e5de61d0916325706efd26e164f08bb9c2dd1ad545022fba2f54b7c55dd55f3",
    "houseB.sensors": "d134255864a8d48f58ca06e8b03e5ef754558ff5749f01268bf2f61ed844f5af",
    "houseC.activities": "c7ee02667afd08fa66157aaee38f0d7deed5bf6297c634a1c0d5d3090a28a625",
    "houseC.activity_names": "e970a9e05fe3a109bc82a2d32eafc2e2f022d91c6b7b576ce7d1e99f0c4cfd98",
    "houseC.sensor_names": "5c229499302cfa60aa5cbd8a1a8fa6ec50ebca35f54cf10d62a788ba2a97a8e6",
    "houseC.sensors": "54e3ae4b42448e8489c99e2450fe0debe676cbf6dcf1b6368069ff08b01412e3",
    "houseD.activities": "7fc1d8063c73c2376d6db844b6157fed2de75d20049f4d66cf0ee88af85e78fa",
    "houseD.activity_names": "598494b83f027d9c7018622b5bdaa89305a959f8074d4e07df58d14bbe1dd739",
    "houseD.sensor_names": "b5fc691bef6f3395d9aec259b2bd5e67751a318682a6763f4c5b2b1fde277a75",
    "houseD.sensors": "71f9f8343de5fdd472175a263d94cbb8e1388970e7d216787d7fafc9071e33fb",
    "houseE.activities": "732d0c6893059db49b66e98d537123569867e1ceebf32040c557840d3c7a5482",
    "houseE.activity_names": "598494b83f027d9c7018622b5bdaa89305a959f8074d4e07df58d14bbe1dd739",
    "houseE.sensor_names": "4b8381225febc145c11c714fdbcff6bf416d2c5d248716c8f69736769f8e98aa",
    "houseE.sensors": "00b6584c3da80043133421ec019080f8206e962a7392794cbda1f8d9652f0908",
}


class TlHomeInfo(msgspec.Struct, frozen=True):
    """One home of the bundle and what the evaluation knows about it."""

    house: str
    site: str
    source: str
    description: str
    absence_labels: frozenset[str]
    """Activity names that mean the resident was out (labelled absences)."""
    unseen: bool = False
    """Held out: never looked at while developing the rules; reported separately."""


KASTEREN_OUT: Final = frozenset({"leave-house"})
MIT_OUT: Final = frozenset(
    {
        "Going-out-to-work",
        "Going-out-for-entertainment",
        "Going-out-to-exercise",
        "Going-out-for-shopping",
        "Going-out-to-school",
    }
)

TL_HOMES: Final[tuple[TlHomeInfo, ...]] = (
    TlHomeInfo(
        house="A",
        site="kasteren-a",
        source="van Kasteren (UvA) 2008",
        description="man, 26, alone; 14 reed/float contacts (doors, cupboards, toilet flush); no PIR, no bed sensor",
        absence_labels=KASTEREN_OUT,
    ),
    TlHomeInfo(
        house="B",
        site="kasteren-b",
        source="van Kasteren (UvA) 2009",
        description="man, 28, alone; 3 PIRs, 2 bed pressure mats, contacts, float, mercury switches",
        absence_labels=KASTEREN_OUT,
    ),
    TlHomeInfo(
        house="C",
        site="kasteren-c",
        source="van Kasteren (UvA) 2008",
        description="man, 57, alone; 2 bed mats, couch mat, 2 PIRs, contacts on doors and cupboards",
        absence_labels=KASTEREN_OUT,
    ),
    TlHomeInfo(
        house="D",
        site="mit-1",
        source="Munguia Tapia (MIT) 2003",
        description="woman, 30, alone; 77 reed switches on doors, drawers, appliances, light switches",
        absence_labels=MIT_OUT,
    ),
    TlHomeInfo(
        house="E",
        site="mit-2",
        source="Munguia Tapia (MIT) 2003",
        description="woman, 80, alone; 84 reed switches on doors, drawers, appliances, light switches",
        absence_labels=MIT_OUT,
        unseen=True,
    ),
)


class Firing(msgspec.Struct, frozen=True):
    """One sensor firing (or one annotated activity): start, duration, id."""

    start_s: int
    duration_s: int
    ident: int


class RawHome(msgspec.Struct, frozen=True):
    """One parsed home of the bundle."""

    info: TlHomeInfo
    sensor_names: dict[int, str]
    firings: tuple[Firing, ...]
    activity_names: dict[int, str]
    activities: tuple[Firing, ...]


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """The dataset cache: ``$ELDERCARE_DATASETS`` or ``~/.cache/eldercare/datasets``."""
    e = os.environ if env is None else env
    raw = e.get(ENV_VAR)
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "eldercare" / "datasets"


def missing_files(root: Path | None = None) -> list[str]:
    """Names of bundle files absent from the cache or failing their checksum (empty: all present and intact)."""
    base = (root or cache_dir()) / TL_DIR
    bad = []
    for name, digest in TL_SHA256.items():
        p = base / name
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def parse_firings(text: str, path: str = "<text>") -> tuple[Firing, ...]:
    """Parse a ``.sensors`` / ``.activities`` file (tab- or space-separated ``start duration id``)."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise RecordingError(path, n, f"expected 3 columns, got {len(parts)}")
        try:
            out.append(Firing(start_s=int(parts[0]), duration_s=int(parts[1]), ident=int(parts[2])))
        except ValueError as exc:
            raise RecordingError(path, n, str(exc)) from None
    out.sort(key=lambda f: (f.start_s, f.ident))
    return tuple(out)


def parse_names(text: str, path: str = "<text>") -> dict[int, str]:
    """Parse a ``.sensor_names`` / ``.activity_names`` file (``id<TAB>name``)."""
    out: dict[int, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        ident, _, name = line.strip().partition("\t")
        if not name:
            ident, _, name = line.strip().partition(" ")
        try:
            out[int(ident)] = name.strip()
        except ValueError as exc:
            raise RecordingError(path, n, str(exc)) from None
    return out


def load_home(info: TlHomeInfo, root: Path | None = None, *, verify: bool = True) -> RawHome:
    """Read one home of the bundle from the cache (``root/tl-kasteren-mit``); checksums checked unless told not to."""
    base = (root or cache_dir()) / TL_DIR

    def read(ext: str) -> tuple[str, str]:
        name = f"house{info.house}.{ext}"
        p = base / name
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise RecordingError(str(p), 0, f"cannot read: {exc}") from None
        if verify and hashlib.sha256(data).hexdigest() != TL_SHA256.get(name):
            raise RecordingError(str(p), 0, "sha256 does not match the published file")
        return data.decode("utf-8", errors="replace"), str(p)

    sensors, sp = read("sensors")
    names, np_ = read("sensor_names")
    acts, ap = read("activities")
    act_names, anp = read("activity_names")
    return RawHome(
        info=info,
        sensor_names=parse_names(names, np_),
        firings=parse_firings(sensors, sp),
        activity_names=parse_names(act_names, anp),
        activities=parse_firings(acts, ap),
    )
