"""One detector per file; :func:`default_detectors` lists them in the order the engine runs them."""

from __future__ import annotations

from alerts.config import DetectConfig
from alerts.detectors.apnea import ApneaDetector
from alerts.detectors.base import Context, Detector
from alerts.detectors.bed_exit import BedExitDetector
from alerts.detectors.device_status import DeviceStatusDetector
from alerts.detectors.fall import FallDetector
from alerts.detectors.inactivity import InactivityDetector
from alerts.detectors.night_door import NightDoorDetector
from alerts.detectors.not_up import NotUpDetector
from alerts.detectors.not_worn import NotWornDetector
from alerts.detectors.offline import OfflineDetector
from alerts.detectors.out_not_back import OutNotBackDetector
from alerts.detectors.site_offline import SiteOfflineDetector
from alerts.detectors.smoke import SmokeDetector
from alerts.detectors.sos import SosDetector
from alerts.detectors.vitals import VitalsDetector
from alerts.detectors.vitals_trend import VitalsTrendDetector


def default_detectors(config: DetectConfig) -> list[Detector]:
    """Every detector, site-offline first (it un-mutes the home before the others run), life-safety next."""
    classes: list[type[Detector]] = [
        SiteOfflineDetector,
        SosDetector,
        FallDetector,
        SmokeDetector,
        VitalsDetector,
        ApneaDetector,
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
