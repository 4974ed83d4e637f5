"""``python -m edge.tools.eval``: detection recall/precision and a posture confusion matrix over labelled media.

Owns the labelling of evaluation media and the printed report. Sources:

* the shared media folder (``DOGMON_MIRROR/media``, by default ``../shared/media``): labels come from
  the file names: ``dog_sitting_`` → sit, ``dog_standing_`` → stand, ``dog_lying_`` / ``dogs_lying_`` → lie,
  ``dogs_running_`` → stand (running dogs are on their feet), ``neg_`` / ``hardneg_`` → no dog;
  videos named ``dog_walking_`` are every frame a standing dog;
* ``--images DIR``: a folder with ``sit/``, ``stand/``, ``lie/`` and ``none/`` sub-folders of photos.

``--gray`` turns every photo and video frame grey (three equal channels) first, as an infrared night
camera delivers it.

Photos are judged one at a time with the same detector and posture code the device runs. A single
photo has no history, so without a pose model the box posture is the *absolute* aspect rule
(:func:`edge.behaviour.posture.classify_box_alone`); videos go through the tracker and the full
temporal rules (motion, the dog's own standing reference), frame by frame, through the device's own
frame pipeline (motion gating, tracker, posture stage: :mod:`edge.tools.evalclip`). With a pose model
(``--pose-model``, same values as ``DOGMON_POSE_MODEL``) keypoints decide when they show enough.

Detection is counted per image: a labelled-dog image with at least one dog box is a hit, a
no-dog image with a dog box a false alarm; the per-class table splits this by the truth label and
names the model's best non-dog animal class where no dog was found. Posture is counted per detected dog box; a dog image
with no dog box counts once as ``missed``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.behaviour.posture import LIE, SIT, STAND, UNKNOWN, PostureMonitor, classify_box_alone, classify_keypoints
from edge.tools.evalclip import ClipResult, run_clip, to_gray

if TYPE_CHECKING:  # the model stack loads only when the evaluation runs
    from edge.config import Config
    from edge.vision.detector import Detector
    from edge.vision.pose import Box, PoseRunner

NONE = "none"
MISSED = "missed"
TRUTHS = (SIT, STAND, LIE)
PREDICTIONS = (SIT, STAND, LIE, UNKNOWN, MISSED)
PREFIXES = (("dog_sitting_", SIT), ("dog_standing_", STAND), ("dog_lying_", LIE), ("dogs_lying_", LIE),
            ("dogs_running_", STAND), ("dog_walking_", STAND), ("neg_", NONE), ("hardneg_", NONE))
ANIMALS = ("cat", "sheep", "bear", "teddy bear", "cow", "horse")  # what the model calls a dog it misses
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def label_from_name(name: str) -> str | None:
    """The truth label a shared-media file name carries, or None for files that are not evaluation media."""
    return next((label for prefix, label in PREFIXES if name.startswith(prefix)), None)


@dataclasses.dataclass
class Sample:
    path: Path
    truth: str           # sit / stand / lie / none
    video: bool = False


def shared_samples(folder: Path) -> list[Sample]:
    out = []
    for path in sorted(folder.iterdir()):
        truth = label_from_name(path.name)
        suffix = path.suffix.lower()
        if truth is None or suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            continue
        out.append(Sample(path, truth, video=suffix in VIDEO_SUFFIXES))
    return out


def folder_samples(folder: Path) -> list[Sample]:
    """``DIR/{sit,stand,lie,none}/*`` images."""
    out = []
    for truth in (SIT, STAND, LIE, NONE):
        sub = folder / truth
        if sub.is_dir():
            out += [Sample(p, truth) for p in sorted(sub.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    return out


@dataclasses.dataclass
class Outcome:
    """What the pipeline said about one photo (or one video frame)."""

    sample: Sample
    dogs: int
    postures: list[str]
    details: list[str]
    guess: str = ""      # with no dog box: the model's best other animal class and score


@dataclasses.dataclass
class Report:
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    video_frames: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)
    clips: dict[str, ClipResult] = dataclasses.field(default_factory=dict)

    def detection(self) -> dict[str, float | int]:
        photos = [o for o in self.outcomes if not o.sample.video]
        tp = sum(1 for o in photos if o.sample.truth != NONE and o.dogs > 0)
        fn = sum(1 for o in photos if o.sample.truth != NONE and o.dogs == 0)
        fp = sum(1 for o in photos if o.sample.truth == NONE and o.dogs > 0)
        tn = sum(1 for o in photos if o.sample.truth == NONE and o.dogs == 0)
        return {"tp": tp, "fn": fn, "fp": fp, "tn": tn,
                "recall": tp / (tp + fn) if tp + fn else float("nan"),
                "precision": tp / (tp + fp) if tp + fp else float("nan")}

    def per_class(self) -> list[str]:
        """Detection split by truth label: photos, photos with a dog box, and what the model said instead."""
        lines = ["truth".ljust(8) + "photos".rjust(7) + "dog box".rjust(9) + "   no dog box: model's best animal"]
        for truth in (*TRUTHS, NONE):
            photos = [o for o in self.outcomes if not o.sample.video and o.sample.truth == truth]
            if not photos:
                continue
            found = sum(1 for o in photos if o.dogs > 0)
            said = ", ".join(f"{o.sample.path.stem[:24]}: {o.guess}" for o in photos if o.dogs == 0)
            lines.append(truth.ljust(8) + str(len(photos)).rjust(7) + f"{found}/{len(photos)}".rjust(9)
                         + ("   " + said if said else ""))
        return lines

    def confusion(self, video: bool = False) -> dict[str, Counter[str]]:
        matrix: dict[str, Counter[str]] = {t: Counter() for t in TRUTHS}
        if video:
            for truth_and_counts in self.video_frames.values():
                for key, n in truth_and_counts.items():
                    truth, predicted = key.split(">")
                    matrix[truth][predicted] += n
            return matrix
        for o in self.outcomes:
            if o.sample.video or o.sample.truth == NONE:
                continue
            for predicted in o.postures or [MISSED]:
                matrix[o.sample.truth][predicted] += 1
        return matrix


def confusion_table(matrix: dict[str, Counter[str]]) -> list[str]:
    width = 8
    lines = ["truth \\ said".ljust(13) + "".join(p.rjust(width) for p in PREDICTIONS) + "   correct"]
    total = right = 0
    for truth in TRUTHS:
        row = matrix[truth]
        n = sum(row.values())
        total += n
        right += row[truth]
        share = f"{row[truth]}/{n}" if n else "-"
        lines.append(truth.ljust(13) + "".join(str(row[p]).rjust(width) for p in PREDICTIONS) + f"   {share}")
    lines.append(f"posture accuracy: {right}/{total}" + (f" = {right / total:.0%}" if total else ""))
    return lines


def format_report(report: Report, pose_model: str | None, gray: bool = False) -> str:
    det = report.detection()
    lines = [f"images: {'grey (as an infrared night camera)' if gray else 'colour'}",
             f"posture evidence: {'keypoints from ' + pose_model + ', else ' if pose_model else ''}"
             "box (single photos: absolute aspect rule; videos: tracker + temporal rules)", ""]
    lines.append("file".ljust(46) + "truth".ljust(7) + "dogs".rjust(5) + "  said (rule)")
    for o in report.outcomes:
        if o.sample.video:
            continue
        said = ", ".join(f"{p} ({d})" for p, d in zip(o.postures, o.details, strict=True)) or "-"
        lines.append(o.sample.path.name[:45].ljust(46) + o.sample.truth.ljust(7) + str(o.dogs).rjust(5) + "  " + said)
    lines += ["", f"detection (per photo): recall {det['tp']}/{det['tp'] + det['fn']}"
              f" = {det['recall']:.0%}, precision {det['tp']}/{det['tp'] + det['fp']} = {det['precision']:.0%}"
              f" (false alarms on {det['fp']} of {det['fp'] + det['tn']} no-dog photos)", "",
              "detection per class (per photo):", *report.per_class(), "",
              "posture on photos (per detected dog; 'missed' = no dog detected):"]
    lines += confusion_table(report.confusion())
    if report.video_frames:
        lines += ["", "posture on videos (per frame with a confirmed track; 'missed' = no confirmed dog):"]
        for name, counts in report.video_frames.items():
            seen = sum(n for k, n in counts.items() if not k.endswith(MISSED))
            lines.append(f"  {name}: dog tracked in {seen}/{sum(counts.values())} frames")
        lines += confusion_table(report.confusion(video=True))
        for name, clip in report.clips.items():
            lines += ["", f"device path on {name}:", *clip.lines()]
    return "\n".join(lines)


class Evaluator:
    def __init__(self, detector: Detector, runner: PoseRunner | None = None, fps_fallback: float = 10.0,
                 gray: bool = False, config: Config | None = None) -> None:
        self.detector = detector
        self.runner = runner
        self.fps_fallback = fps_fallback
        self.gray = gray
        self.config = config

    def look(self, image: np.ndarray) -> np.ndarray:
        """The image as the camera would deliver it: unchanged, or grey in three equal channels."""
        return to_gray(image) if self.gray else image

    def animal_guess(self, image: np.ndarray) -> str:
        output, _ = self.detector.infer(image)
        rows = output.reshape(-1, output.shape[-1])
        names = self.detector.class_names
        best = max(((float((rows[:, 4] * rows[:, 5 + names.index(a)]).max()), a) for a in ANIMALS if a in names),
                   default=(0.0, "-"))
        return f"{best[1]} {best[0]:.2f}"

    def _keypoints(self, image: np.ndarray, box: Box) -> dict[str, tuple[float, float, float]] | None:
        if self.runner is None:
            return None
        pose = self.runner.estimate(image, box)
        return pose.named() if pose is not None else None

    def photo(self, sample: Sample) -> Outcome:
        image = cv2.imread(str(sample.path))
        if image is None:
            raise SystemExit(f"cannot read image {sample.path}")
        image = self.look(image)
        dogs = [d for d in self.detector.detect(image) if d.label == "dog"]
        postures, details = [], []
        for d in dogs:
            box = (d.x1, d.y1, d.x2, d.y2)
            keypoints = self._keypoints(image, box)
            threshold = self.runner.spec.keypoint_threshold if self.runner is not None else 0.3
            reading = classify_keypoints(keypoints, threshold) if keypoints is not None else None
            if reading is None:
                reading = classify_box_alone(box)
            postures.append(reading.posture)
            details.append(f"{reading.source}: {reading.detail}" if reading.source == "box" else "keypoints")
        return Outcome(sample, len(dogs), postures, details, "" if dogs else self.animal_guess(image))

    def video(self, sample: Sample) -> Counter[str]:
        """Every frame through tracker + posture monitor, at the video's own timestamps."""
        from edge.vision.tracking import DogTracker

        cap = cv2.VideoCapture(str(sample.path))
        fps = cap.get(cv2.CAP_PROP_FPS) or self.fps_fallback
        tracker, monitor = DogTracker(), PostureMonitor()
        counts: Counter[str] = Counter()
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = index / fps
            index += 1
            frame = self.look(frame)
            dogs = [d for d in self.detector.detect(frame) if d.label == "dog"]
            update = tracker.update(dogs, t)
            seen = [tr for tr in update.tracks if tr.confirmed and tr.last_seen == t]
            if not seen:
                counts[f"{sample.truth}>{MISSED}"] += 1
                continue
            track = max(seen, key=lambda tr: tr.hits)
            reading = monitor.read(t, track.track_id, track.box, self._keypoints(frame, track.box))
            counts[f"{sample.truth}>{reading.posture}"] += 1
        cap.release()
        return counts

    def run(self, samples: Iterable[Sample]) -> Report:
        report = Report()
        for sample in samples:
            if sample.video:
                report.video_frames[sample.path.name] = self.video(sample)
                if self.config is not None:
                    report.clips[sample.path.name] = run_clip(sample.path, self.detector, self.config, self.look)
            else:
                report.outcomes.append(self.photo(sample))
        return report


def build(args: argparse.Namespace) -> tuple[Config, Detector, PoseRunner | None]:
    """Detector (and pose runner) from the device configuration, fetching the detector if needed."""
    from edge.config import load_config
    from edge.device import build_detector, ensure_models
    from edge.vision.pose import load_pose_runner

    config = load_config(Path(args.env) if args.env else None)
    ensure_models(config)
    detector = build_detector(config)
    selector = args.pose_model if args.pose_model is not None else config.pose_model
    runner = load_pose_runner(selector, config.model_dir, config.inference_threads, config.graph_optimization,
                              config.execution_providers, mirror=config.mirror)
    return config, detector, runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", help="labelled media folder named as ../shared/media (default: the mirror's "
                                        "media/ or ../shared/media)")
    parser.add_argument("--images", help="folder with sit/ stand/ lie/ none/ sub-folders of photos")
    parser.add_argument("--no-shared", action="store_true", help="only evaluate --images")
    parser.add_argument("--no-video", action="store_true", help="skip videos in the media folder")
    parser.add_argument("--pose-model", help="as DOGMON_POSE_MODEL (default: the configured one; 'off' for box only)")
    parser.add_argument("--gray", action="store_true", help="every photo and frame in grey, as an infrared camera")
    parser.add_argument("--env", help="env file (default: ./device.env if present)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config, detector, runner = build(args)
    except Exception as exc:  # a CLI: say what is wrong in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    samples: list[Sample] = []
    if not args.no_shared:
        media = Path(args.media) if args.media else (config.mirror / "media" if config.mirror else
                                                     Path(__file__).resolve().parent.parent.parent / "shared" / "media")
        if not media.is_dir():
            print(f"error: no media folder at {media}: pass --media DIR or set DOGMON_MIRROR", file=sys.stderr)
            return 2
        samples += shared_samples(media)
    if args.images:
        folder = Path(args.images)
        found = folder_samples(folder)
        if not found:
            print(f"error: no images in {folder}/{{sit,stand,lie,none}}/", file=sys.stderr)
            return 2
        samples += found
    if args.no_video:
        samples = [s for s in samples if not s.video]
    report = Evaluator(detector, runner, gray=args.gray, config=config).run(samples)
    print(format_report(report, runner.spec.name if runner is not None else None, args.gray))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
