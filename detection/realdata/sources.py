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

A second, independent source: the UCI "Activities of Daily Living (ADLs) Recognition Using Binary Sensors" dataset
(F. J. Ordóñez, P. de Toledo, A. Sanchis, Carlos III University of Madrid: Sensors 2013, 13, 5460-5477), two homes
of one person each (OrdonezA 14 days, OrdonezB 21 days) with PIRs, magnetic contacts, a toilet-flush sensor,
appliance (electric) sensors and **bed and seat pressure sensors that report occupancy spans**. Its files
(``Ordonez{A,B}_{Sensors,ADLs}.txt``) hold one line per firing: ``start date time  end date time  Location  Type
Place`` (activities: ``... Activity``), local wall time, CRLF. The copy we use is
``CostantiniMatteo/progetto-mpd`` (commit :data:`ORDONEZ_COMMIT`, ``dataset/``); ``Anjin-Liu/ConceptDriftDatasets``
holds the same text with LF line endings, so the checksums are taken over the text with CRLF turned into LF.

A third, held-out source: the HomeAssist "Home1" recording (Inria Phoenix team, Bordeaux; Consel, Dupuy, Sauzéon
2017; Volanschi et al., IMWUT 2018), published as ``dataset.csv`` of ``belloum/reproducible-monitoring`` (commit
:data:`HOMEASSIST_COMMIT`) and, byte-identical, as ``ex/smarthome/homeAssist/Home1_2017.csv`` of
``NicVolanschi/Allen``. One line per record, ``ISO local time;sensor;value``: ``MotionD_<room>`` PIRs and
``ContactS_<place>`` contacts report ``1`` / ``0`` (on / off, open / closed), ``EMeter_*`` power meters report watts,
and every device reports ``<sensor>.CommFailure`` ``1`` / ``0`` (the controller cannot reach it / can again),
``.BatteryLevel`` and (meters) ``.Status`` / ``.Tripped``. No activity labels, no labelled absences.

A fourth, held-out source: the position (motion) file of the UCI dataset 799 "Single Elder Home Monitoring: Gas
and Position" (D. Marín, J. Llano, Z. Haddi, A. Perera, J. Fonollosa, Universitat Politècnica de Catalunya:
"Home monitoring for older singles: A gas sensor array system", Sensors and Actuators B 2023), an older person
living alone in their own home in Spain, five PIRs (living room, bedroom, bathroom, kitchen, hallway), no door
contact, no bed sensor, no labels. ``database_pos.csv``: ``datetime,Living room,Bedroom,Bathroom,Kitchen,Hallway``,
one row per state change of one PIR (``1.0`` motion, ``0.0`` none; the other columns empty), ISO times in UTC. From
25-Jan-2020 the home was left empty as the study's reference period (visits only): it is not the resident's life
and is not read. The copy used is ``eskinderit/single-elders-home-monitoring`` (commit :data:`UPC_COMMIT`, file
:data:`UPC_PATH`); its hourly counts agree with ``maciano4/AAI_530_Project`` (built from the UCI zip) over every
hour from 6-Nov-2019 to 13-Feb-2020.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import time
from pathlib import Path
from typing import Final

import msgspec

from detection.errors import RecordingError

ENV_VAR: Final = "ELDERCARE_DATASETS"
TL_DIR: Final = "tl-kasteren-mit"
TL_REPO: Final = "https://github.com/agnesvanbelle/TL"
TL_COMMIT: Final = "3583db044e47c853f63b4010b149cc97826a6c04"
TL_PATH: Final = "source-code/our_project/data_src/data"

ORDONEZ_DIR: Final = "uci-adl-ordonez"
ORDONEZ_REPO: Final = "https://github.com/CostantiniMatteo/progetto-mpd"
ORDONEZ_COMMIT: Final = "e7bef90f8bf989f0d7d3ea88764bd7f3dd21dd04"
ORDONEZ_PATH: Final = "dataset"
ORDONEZ_SHA256: Final[dict[str, str]] = {
    # sha256 of the text with CRLF → LF (see the module docstring); the CRLF files of ORDONEZ_REPO hash to
    # 3ec41f2b…, b0186018…, b0c77812…, d2c59c9a… byte for byte.
    "OrdonezA_ADLs.txt": "a886e6d78b4f5fb121e2d9b447c795f90698289c44405c0db68bf947f6a83bda",
    "OrdonezA_Sensors.txt": "98e4521999fc901e6f13c0657cd00980aaab0543b6a723f2861114491e2dcdc6",
    "OrdonezB_ADLs.txt": "13e5813e5b8c6b5867a97757e281516c2796f4d02773f236d89c0e58b7102b13",
    "OrdonezB_Sensors.txt": "fc6d24556a8cb91bd6d14d983f62d75058306273d162833908883836e8c39a5f",
}

HOMEASSIST_DIR: Final = "homeassist"
HOMEASSIST_REPO: Final = "https://github.com/belloum/reproducible-monitoring"
HOMEASSIST_COMMIT: Final = "b132cfe62777c0729113a3c8ab325856afd84087"
HOMEASSIST_FILE: Final = "Home1_2017.csv"
HOMEASSIST_SHA256: Final[dict[str, str]] = {
    # byte for byte: ``dataset.csv`` of HOMEASSIST_REPO at HOMEASSIST_COMMIT, saved under this name (the name it has
    # in NicVolanschi/Allen, commit 7f2053acb9e90da8b2008c64bf782dce8e5144dc, ex/smarthome/homeAssist/).
    HOMEASSIST_FILE: "8d2e19ef98a782dbc420336bbfd7dcbb11461a30907455c51ff9432df63e70bd",
}

UPC_DIR: Final = "uci-single-elder"
UPC_REPO: Final = "https://github.com/eskinderit/single-elders-home-monitoring"
UPC_COMMIT: Final = "88d178e492f45e6267a9f50bb85495164058a813"
UPC_PATH: Final = "single-elders-home-monitoring/data/database_pos.csv"
UPC_FILE: Final = "database_pos.csv"
UPC_SHA256: Final[dict[str, str]] = {
    # byte for byte: UPC_PATH of UPC_REPO at UPC_COMMIT (unchanged since the repository's first commit, 128faf65).
    UPC_FILE: "de21f9e2738ac0756bd6fd2d37be5322c0b88e1186886d7d481c31463450b14a",
}
UPC_UTC_OFFSET_S: Final = 3600
"""The file's UTC times → the home's wall time (Spain, CET: no clock change between November and January)."""
UPC_RESIDENT_UNTIL: Final = "2020-01-25T00:00:00+00:00"
"""The study's own cut (its pipeline keeps ``timestamp < '2020-01-25'`` as occupied): the empty reference period
follows."""

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
    dataset: str = TL_DIR
    """Cache sub-directory and file format: :data:`TL_DIR` or :data:`ORDONEZ_DIR`."""
    silence_recorded: bool = True
    """False: the release lists sensor firings only inside annotated activities (MIT: every firing of both homes
    lies inside one, and the activities cover 16 % and 28 % of the time), so a silence between activities may be
    data that was never released rather than a quiet resident: silence-based pages there are not scored as false
    (incidents still are: they are cut out of recorded activity)."""


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

ORDONEZ_OUT: Final = frozenset({"Leaving"})

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
        silence_recorded=False,
    ),
    TlHomeInfo(
        house="E",
        site="mit-2",
        source="Munguia Tapia (MIT) 2003",
        description="woman, 80, alone; 84 reed switches on doors, drawers, appliances, light switches",
        absence_labels=MIT_OUT,
        unseen=True,
        silence_recorded=False,
    ),
)

ORDONEZ_HOMES: Final[tuple[TlHomeInfo, ...]] = (
    TlHomeInfo(
        house="A",
        site="ordonez-a",
        source="Ordóñez (UC3M) 2011",
        description="one person, 14 days; 3 PIRs, 4 magnetic contacts (front door, fridge, cabinet, cupboard), toilet"
        " flush, bed and seat occupancy (pressure), microwave and toaster (electric)",
        absence_labels=ORDONEZ_OUT,
        unseen=True,
        dataset=ORDONEZ_DIR,
    ),
    TlHomeInfo(
        house="B",
        site="ordonez-b",
        source="Ordóñez (UC3M) 2012",
        description="one person, 21 days; 5 PIRs (bathroom shower and basin, kitchen, living-room and bedroom"
        " doorways), 3 magnetic contacts (front door, fridge, cupboard), toilet flush, bed and seat occupancy"
        " (pressure), microwave (electric)",
        absence_labels=ORDONEZ_OUT,
        dataset=ORDONEZ_DIR,
    ),
)

HOMEASSIST_HOMES: Final[tuple[TlHomeInfo, ...]] = (
    TlHomeInfo(
        house="1",
        site="homeassist-1",
        source="HomeAssist (Inria, Bordeaux) 2017",
        description="an older adult's home (household size not published); 7 PIRs (bedroom, bathroom, shower,"
        " toilet, entrance hall, kitchen, living room), contacts on the entrance door, fridge and cupboard, two"
        " power meters (dropped); the devices' own communication-failure records; no labels",
        absence_labels=frozenset(),
        unseen=True,
        dataset=HOMEASSIST_DIR,
    ),
)

UPC_HOMES: Final[tuple[TlHomeInfo, ...]] = (
    TlHomeInfo(
        house="1",
        site="upc-1",
        source="Marín, Fonollosa et al. (UPC, Barcelona) 2019-2020, UCI 799",
        description="an older person living alone in their own home; 5 PIRs (living room, bedroom, bathroom, kitchen,"
        " hallway); no door contact, no bed sensor; no labels",
        absence_labels=frozenset(),
        unseen=True,
        dataset=UPC_DIR,
    ),
)

HOMES: Final[tuple[TlHomeInfo, ...]] = TL_HOMES + ORDONEZ_HOMES + HOMEASSIST_HOMES + UPC_HOMES
"""Every home of the evaluation, all sources (the development set and the held-out homes)."""


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
    comm_failures: tuple[Firing, ...] = ()
    """The devices' own failure records (HomeAssist ``.CommFailure`` on → off), per sensor id, in seconds."""
    records_s: tuple[int, ...] = ()
    """Time of every record of any kind (HomeAssist): where there is none, the platform recorded nothing."""


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """The dataset cache: ``$ELDERCARE_DATASETS`` or ``~/.cache/eldercare/datasets``."""
    e = os.environ if env is None else env
    raw = e.get(ENV_VAR)
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "eldercare" / "datasets"


def text_sha256(data: bytes) -> str:
    """sha256 of a text file with CRLF line endings turned into LF (public copies differ only there)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def file_ok(path: Path, digest: str, *, normalise: bool) -> bool:
    """True if ``path`` exists and matches ``digest`` (byte for byte, or as text when ``normalise``)."""
    if not path.is_file():
        return False
    data = path.read_bytes()
    return (text_sha256(data) if normalise else hashlib.sha256(data).hexdigest()) == digest


def _checksums(dataset: str) -> tuple[dict[str, str], bool]:
    if dataset == ORDONEZ_DIR:
        return ORDONEZ_SHA256, True
    if dataset == HOMEASSIST_DIR:
        return HOMEASSIST_SHA256, False
    if dataset == UPC_DIR:
        return UPC_SHA256, False
    return TL_SHA256, False


def missing_by_dataset(root: Path | None = None) -> dict[str, list[str]]:
    """Per dataset directory, the files absent from the cache or failing their checksum."""
    out: dict[str, list[str]] = {}
    for dataset in (TL_DIR, ORDONEZ_DIR, HOMEASSIST_DIR, UPC_DIR):
        sums, normalise = _checksums(dataset)
        base = (root or cache_dir()) / dataset
        out[dataset] = [n for n, d in sums.items() if not file_ok(base / n, d, normalise=normalise)]
    return out


def missing_files(root: Path | None = None) -> list[str]:
    """Names of dataset files absent from the cache or failing their checksum (empty: all present and intact)."""
    return [n for names in missing_by_dataset(root).values() for n in names]


def available_homes(root: Path | None = None, homes: tuple[TlHomeInfo, ...] = HOMES) -> tuple[TlHomeInfo, ...]:
    """The homes whose dataset is complete and intact in the cache."""
    bad = missing_by_dataset(root)
    return tuple(h for h in homes if not bad.get(h.dataset))


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


_ORDONEZ_TIME: Final = "%Y-%m-%d %H:%M:%S"


def _wall_s(date: str, clock: str) -> int:
    # The files hold local wall time; read it as if UTC (like the TL bundle), so tz_offset_s=0 applies.
    return calendar.timegm(time.strptime(f"{date} {clock}", _ORDONEZ_TIME))


def parse_ordonez(text: str, path: str = "<text>") -> tuple[dict[int, str], tuple[Firing, ...]]:
    """Parse an ``Ordonez*_Sensors.txt`` / ``*_ADLs.txt`` file: names (``Location,Type,Place``, activity) and spans.

    Ids are numbered from 1 in order of first appearance. A span that ends before it starts (three labels of
    ``OrdonezA_ADLs.txt`` in the release, typos in the end date or hour; no sensor line) is read as zero-length.
    """
    names: dict[str, int] = {}
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0] == "Start" or parts[0].startswith("---"):
            continue
        if len(parts) < 5:
            raise RecordingError(path, n, f"expected start, end and a name, got {len(parts)} columns")
        try:
            start = _wall_s(parts[0], parts[1])
            end = _wall_s(parts[2], parts[3])
        except ValueError as exc:
            raise RecordingError(path, n, str(exc)) from None
        ident = names.setdefault(",".join(parts[4:]), len(names) + 1)
        out.append(Firing(start_s=start, duration_s=max(0, end - start), ident=ident))
    out.sort(key=lambda f: (f.start_s, f.ident))
    return {i: name for name, i in names.items()}, tuple(out)


def _iso_wall_s(stamp: str) -> int:
    # ``2017-01-16T17:49:25.864``: local wall time, read as if UTC (tz_offset_s=0), whole seconds.
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))


_HA_BINARY: Final = ("MotionD_", "ContactS_")


def parse_homeassist(
    text: str, path: str = "<text>"
) -> tuple[dict[int, str], tuple[Firing, ...], tuple[Firing, ...], tuple[int, ...]]:
    """Parse a HomeAssist ``ISO time;sensor;value`` file: names, on-spans, failure spans, record times.

    Sensors are numbered from 1 in name order. A PIR (``MotionD_*``) or contact (``ContactS_*``) is "on" from a
    ``1`` to the next ``0`` (a repeated ``1`` or an unmatched ``0`` changes nothing; a ``1`` never followed by a
    ``0`` lasts 0 s). Power meters (``EMeter_*``) get a name and no span. A failure span runs from
    ``<sensor>.CommFailure;1`` to the next ``<sensor>.CommFailure;0``; a ``1`` that no ``0`` ever follows (seven in
    the release, the last ones of their devices) ends at the device's next record of its own, its first sign of
    life, or else at the last record of the file.
    """
    rows: list[tuple[int, str, str, str, int]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(";")
        if len(parts) != 3:
            raise RecordingError(path, n, f"expected 'time;sensor;value', got {len(parts)} fields")
        stamp, sensor, value = parts
        try:
            t = _iso_wall_s(stamp)
        except ValueError as exc:
            raise RecordingError(path, n, str(exc)) from None
        base, _, attr = sensor.partition(".")
        rows.append((t, base, attr, value, n))
    rows.sort(key=lambda r: r[0])  # stable: the file's order within a second
    names = {name: i for i, name in enumerate(sorted({r[1] for r in rows}), start=1)}
    firings: list[Firing] = []
    failures: list[Firing] = []
    on: dict[str, int] = {}
    failing: dict[str, int] = {}
    for t, base, attr, value, n in rows:
        ident = names[base]
        if attr == "CommFailure":
            if value == "1":
                failing.setdefault(base, t)
            elif value == "0" and base in failing:
                s0 = failing.pop(base)
                failures.append(Firing(start_s=s0, duration_s=t - s0, ident=ident))
            continue
        if attr or not base.startswith(_HA_BINARY):
            continue
        if value == "1":
            on.setdefault(base, t)
        elif value == "0":
            if base in on:
                s0 = on.pop(base)
                firings.append(Firing(start_s=s0, duration_s=t - s0, ident=ident))
        else:
            raise RecordingError(path, n, f"{base}: expected 1 or 0, got {value!r}")
    for base, s0 in on.items():
        firings.append(Firing(start_s=s0, duration_s=0, ident=names[base]))
    # A failure still "on" at the end of the file: only a later record of the device itself can end it; with none
    # (five devices of Home1 go silent for good this way) it lasts to the end of the recording.
    for base, s0 in failing.items():
        later = next((r[0] for r in rows if r[1] == base and r[2] != "CommFailure" and r[0] > s0), rows[-1][0])
        failures.append(Firing(start_s=s0, duration_s=later - s0, ident=names[base]))
    firings.sort(key=lambda f: (f.start_s, f.ident))
    failures.sort(key=lambda f: (f.start_s, f.ident))
    return {i: name for name, i in names.items()}, tuple(firings), tuple(failures), tuple(r[0] for r in rows)


def parse_upc(text: str, path: str = "<text>") -> tuple[dict[int, str], tuple[Firing, ...]]:
    """Parse the UCI 799 position file: PIR names (the header's rooms, numbered from 1) and on-spans in wall time.

    A PIR is "on" from a ``1.0`` to its next ``0.0`` (a repeated value changes nothing; a ``1.0`` never followed by
    a ``0.0`` lasts 0 s). A row with no value (29 in the release) is skipped. Rows from :data:`UPC_RESIDENT_UNTIL`
    on (the empty reference period) are not read. Times are shifted by :data:`UPC_UTC_OFFSET_S` into the home's
    wall time and read as if UTC, like the other homes (``tz_offset_s=0``).
    """
    lines = text.splitlines()
    if not lines:
        raise RecordingError(path, 1, "empty file")
    header = [c.strip() for c in lines[0].split(",")]
    if len(header) < 2 or header[0] != "datetime":
        raise RecordingError(path, 1, f"expected 'datetime,<room>,...', got {lines[0][:60]!r}")
    names = {i: name for i, name in enumerate(header[1:], start=1)}
    until = _iso_utc_s(UPC_RESIDENT_UNTIL)
    on: dict[int, int] = {}
    out: list[Firing] = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(header):
            raise RecordingError(path, n, f"expected {len(header)} columns, got {len(cells)}")
        values = [(i, v) for i, v in enumerate(cells[1:], start=1) if v.strip()]
        if not values:
            continue
        try:
            utc = _iso_utc_s(cells[0])
        except ValueError as exc:
            raise RecordingError(path, n, str(exc)) from None
        if utc >= until:
            continue
        t = utc + UPC_UTC_OFFSET_S
        for ident, value in values:
            if value.strip() == "1.0":
                on.setdefault(ident, t)
            elif value.strip() == "0.0":
                if ident in on:
                    s0 = on.pop(ident)
                    out.append(Firing(start_s=s0, duration_s=t - s0, ident=ident))
            else:
                raise RecordingError(path, n, f"{names[ident]}: expected 1.0 or 0.0, got {value!r}")
    out.extend(Firing(start_s=s0, duration_s=0, ident=i) for i, s0 in on.items())
    out.sort(key=lambda f: (f.start_s, f.ident))
    return names, tuple(out)


def _iso_utc_s(stamp: str) -> int:
    # ``2019-11-01 02:52:55.271086300+00:00`` (nanoseconds: more digits than ``fromisoformat`` reads): whole seconds.
    head, _, zone = stamp.strip().partition("+")
    if zone not in ("", "00:00"):
        raise ValueError(f"expected a UTC time, got {stamp!r}")
    return _iso_wall_s(head.replace(" ", "T"))


def _read(base: Path, name: str, dataset: str, verify: bool) -> tuple[str, str]:
    p = base / name
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordingError(str(p), 0, f"cannot read: {exc}") from None
    sums, normalise = _checksums(dataset)
    if verify and (text_sha256(data) if normalise else hashlib.sha256(data).hexdigest()) != sums.get(name):
        raise RecordingError(str(p), 0, "sha256 does not match the published file")
    return data.decode("utf-8", errors="replace"), str(p)


def load_home(info: TlHomeInfo, root: Path | None = None, *, verify: bool = True) -> RawHome:
    """Read one home from the cache (``root/<info.dataset>``); checksums checked unless told not to."""
    base = (root or cache_dir()) / info.dataset
    if info.dataset == HOMEASSIST_DIR:
        text, p = _read(base, HOMEASSIST_FILE, info.dataset, verify)
        ha_names, ha_firings, failures, records = parse_homeassist(text, p)
        return RawHome(
            info=info,
            sensor_names=ha_names,
            firings=ha_firings,
            activity_names={},
            activities=(),
            comm_failures=failures,
            records_s=records,
        )
    if info.dataset == UPC_DIR:
        text, p = _read(base, UPC_FILE, info.dataset, verify)
        upc_names, upc_firings = parse_upc(text, p)
        return RawHome(info=info, sensor_names=upc_names, firings=upc_firings, activity_names={}, activities=())
    if info.dataset == ORDONEZ_DIR:
        s_text, s_path = _read(base, f"Ordonez{info.house}_Sensors.txt", info.dataset, verify)
        a_text, a_path = _read(base, f"Ordonez{info.house}_ADLs.txt", info.dataset, verify)
        sensor_names, firings = parse_ordonez(s_text, s_path)
        activity_names, activities = parse_ordonez(a_text, a_path)
        return RawHome(
            info=info,
            sensor_names=sensor_names,
            firings=firings,
            activity_names=activity_names,
            activities=activities,
        )

    def read(ext: str) -> tuple[str, str]:
        return _read(base, f"house{info.house}.{ext}", info.dataset, verify)

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
