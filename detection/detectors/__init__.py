"""One detector per file; :func:`default_detectors` lists them in the order the engine runs them."""

from __future__ import annotations

from detection.config import DetectConfig
from detection.detectors.apnea import ApneaDetector
from detection.detectors.base import Context, Detector
from detection.detectors.bed_exit import BedExitDetector
from detection.detectors.checkin import CheckInDetector
from detection.detectors.device_status import DeviceStatusDetector
from detection.detectors.fall import FallDetector
from detection.detectors.gas import GasDetector
from detection.detectors.inactivity import InactivityDetector
from detection.detectors.night_door import NightDoorDetector
from detection.detectors.not_up import NotUpDetector
from detection.detectors.not_worn import NotWornDetector
from detection.detectors.offline import OfflineDetector
from detection.detectors.out_not_back import OutNotBackDetector
from detection.detectors.site_offline import SiteOfflineDetector
from detection.detectors.smoke import SmokeDetector
from detection.detectors.sos import SosDetector
from detection.detectors.vitals import VitalsDetector
from detection.detectors.vitals_trend import VitalsTrendDetector


def default_detectors(config: DetectConfig) -> list[Detector]:
    """Every detector, site-offline first (it un-mutes the home before the others run), life-safety next."""
    classes: list[type[Detector]] = [
        SiteOfflineDetector,
        SosDetector,
        FallDetector,
        SmokeDetector,
        GasDetector,
        VitalsDetector,
        ApneaDetector,
        CheckInDetector,
        BedExitDetector,
        InactivityDetector,
        NotUpDetector,
        NightDoorDetector,
        OutNotBackDetector,
        VitalsTrendDetector,
        OfflineDetector,
        DeviceStatusDetector,
        NotWornDetector,
    ]
    return [cls(config=config) for cls in classes]


__all__ = ["Context", "Detector", "default_detectors"]
