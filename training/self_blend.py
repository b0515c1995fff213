"""Self-blended fakes: a face blended with a slightly altered copy of itself, after SBI (Shiohara and
Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022).

Every face-swap pastes one face into another frame under a soft mask, and the paste leaves traces:
a boundary where two images meet, a colour and lighting mismatch, a resolution mismatch, a face a few
pixels off its head. SBI makes those traces without a second identity: the source is the frame itself,
colour-shifted, rescaled, moved and elastically warped a little, and it is blended into the frame under
a blurred mask around the face. A detector trained on such fakes learns the traces of blending,
not the look of one generator.

SBI blends still images; here a video is faked. So every parameter is drawn once per video and varies
smoothly from frame to frame (a slow drift of the offset and the colour, nothing that flickers), and
the mask follows the face box of each frame. Pixels outside the mask are left exactly as they were.

Pure numpy, deterministic in the generator it is given.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# SBI's blend ratios: a full paste half the time, partial ones otherwise.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
_MASK_TRUNCATE = 2.5  # Gaussian kernels end at this many sigmas, so the mask has exact zeros beyond
_MASK_GRID = 64  # a face's mask is computed on at most this many cells across


@dataclasses.dataclass(frozen=True)
class BlendParams:
    """One video's blend, drawn once (``draw_params``). Lengths are fractions of the face box."""

    scale: float  # the source is the frame zoomed by this about the face centre (SBI: 0.95-1.05)
    offset: tuple[float, float]  # ... and moved by this (x, y), as fractions of the box (SBI: up to 3 %)
    drift: float  # how far the offset wanders over the video, fraction of the box
    drift_period: float  # frames per cycle of that wander
    drift_phase: tuple[float, float]
    warp: np.ndarray  # (4, 4, 2) elastic displacement at a coarse grid over the face, fraction of the box
    channel_shift: tuple[float, float, float]  # grey levels added per channel (SBI's RGBShift)
    brightness: float  # grey levels added to all channels
    contrast: float  # gain about the region's mean
    saturation: float  # 1: unchanged; below 1 towards grey, above away from it
    colour_drift: float  # grey levels the colour shift wanders over the video
    downscale: float  # the source is resampled through a grid this many times coarser (1: not)
    mask_axes: tuple[float, float]  # the mask ellipse's semi-axes, fractions of the box's width and height
    mask_centre: tuple[float, float]  # the ellipse's centre, offset from the box centre, fractions of the box
    mask_blur: tuple[float, float]  # two blur sigmas, fractions of the box side (SBI blurs, cuts, blurs again)
    ratio: float  # the mask's peak weight (BLEND_RATIOS)


def draw_params(rng: np.random.Generator, strength: float = 1.0) -> BlendParams:
    """One video's blend, within SBI's ranges (translation 3 %, scale 5 %, RGB shift 20 levels, hue,
    saturation and brightness-contrast jitter, downscale or none, the mask blurred twice).

    ``strength`` widens the misalignment and colour ranges by that factor and the blend ratio with
    them (capped at 1): SBI's own ranges (1) are made for large crops and large models; a model of a
    few thousand weights seeing 32-pixel faces needs plainer fakes to learn from in a minute."""
    return BlendParams(
        scale=float(1.0 + strength * rng.uniform(-0.05, 0.05)),
        offset=tuple(float(v) for v in strength * rng.uniform(-0.03, 0.03, 2)),
        drift=float(rng.uniform(0.0, 0.02)),
        drift_period=float(rng.uniform(24.0, 72.0)),
        drift_phase=tuple(float(v) for v in rng.uniform(0.0, 2 * np.pi, 2)),
        warp=strength * rng.normal(0.0, 0.015, (4, 4, 2)),
        channel_shift=tuple(float(v) for v in strength * rng.uniform(-20.0, 20.0, 3)),
        brightness=float(strength * rng.uniform(-15.0, 15.0)),
        contrast=float(1.0 + strength * rng.uniform(-0.1, 0.1)),
        saturation=float(1.0 + strength * rng.uniform(-0.2, 0.2)),
        colour_drift=float(rng.uniform(0.0, 4.0)),
        downscale=float(rng.choice([1.0, rng.uniform(1.5, 3.0)])),
        mask_axes=(float(rng.uniform(0.38, 0.5)), float(rng.uniform(0.45, 0.6))),
        mask_centre=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(0.0, 0.08))),
        mask_blur=(float(rng.uniform(0.03, 0.08)), float(rng.uniform(0.03, 0.08))),
        ratio=float(min(1.0, strength * rng.choice(BLEND_RATIOS))),
    )


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(_MASK_TRUNCATE * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return kernel / kernel.sum()


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a (H, W) float image, zero outside it; finite support, so a pixel
    farther than the kernel's radius from any nonzero pixel stays exactly zero."""
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    for axis in (0, 1):
        padded = np.pad(image, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        length = image.shape[axis]
        image = sum(weight * np.take(padded, np.arange(i, i + length), axis=axis) for i, weight in enumerate(kernel))
    return image


def _region(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels the blend may touch: the box grown by half its size on each side, inside the frame.
    (x0, y0, x1, y1)"""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(x - w / 2))), max(0, int(np.floor(y - h / 2)))
    x1, y1 = min(width, int(np.ceil(x + 1.5 * w))), min(height, int(np.ceil(y + 1.5 * h)))
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def blend_mask(box: np.ndarray, params: BlendParams, width: int, height: int) -> np.ndarray:
    """The soft mask of one frame: an ellipse about the face, blurred, cut where below 1 (so the
    second blur starts inside the face), blurred again, scaled to peak at the blend ratio.  (H, W) float

    A large face is masked on a coarser grid (its side at most ``_MASK_GRID`` cells) and the mask
    interpolated back: it is smooth, and blurring at full resolution would cost a 720p frame 0.3 s."""
    mask = np.zeros((height, width), dtype=np.float64)
    x0, y0, x1, y1 = _region(box, width, height)
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w * (0.5 + params.mask_centre[0]), y + h * (0.5 + params.mask_centre[1])
    side = np.sqrt(max(w, 1.0) * max(h, 1.0))
    step = max(1.0, side / _MASK_GRID)  # pixels per cell
    cells_y, cells_x = int(np.ceil((y1 - y0) / step)), int(np.ceil((x1 - x0) / step))
    yy, xx = np.mgrid[0:cells_y, 0:cells_x].astype(np.float64)
    yy, xx = y0 + (yy + 0.5) * step, x0 + (xx + 0.5) * step  # cell centres in frame pixels
    inside = ((xx - cx) / (w * params.mask_axes[0])) ** 2 + ((yy - cy) / (h * params.mask_axes[1])) ** 2 <= 1.0
    soft = _blur(inside.astype(np.float64), max(0.5, params.mask_blur[0] * side / step))
    cut = np.where(soft < 1.0 - 1e-9, 0.0, soft)
    soft = _blur(cut if cut.any() else soft, max(0.5, params.mask_blur[1] * side / step))
    if soft.max() <= 0:
        return mask
    soft = soft / soft.max() * params.ratio
    if step > 1.0:
        fine_y, fine_x = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
        soft = _bilinear(soft[..., None], (fine_x - x0) / step, (fine_y - y0) / step)[..., 0]
    mask[y0:y1, x0:x1] = soft
    return mask


def _bilinear(frame: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) sampled at float pixel centres (xs, ys), clamped to its edges.  (h, w, 3) float"""
    height, width = frame.shape[:2]
    xs = np.clip(xs - 0.5, 0.0, width - 1.0)
    ys = np.clip(ys - 0.5, 0.0, height - 1.0)
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = frame[y0, x0] * (1 - fx) + frame[y0, x1] * fx  # gathered first: a uint8 frame is not copied whole
    bottom = frame[y1, x0] * (1 - fx) + frame[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _coarse_resample(image: np.ndarray, factor: float) -> np.ndarray:
    """Detail lost as in a face rendered small and upsampled: sampled on a grid ``factor`` times
    coarser, then bilinear back.  (h, w, 3) float -> same"""
    if factor <= 1.0:
        return image
    height, width = image.shape[:2]
    small_h, small_w = max(1, int(round(height / factor))), max(1, int(round(width / factor)))
    coarse_x, coarse_y = (np.arange(small_w) + 0.5) * width / small_w, (np.arange(small_h) + 0.5) * height / small_h
    small = _bilinear(image, *np.meshgrid(coarse_x, coarse_y))  # (small_h, small_w, 3)
    xs, ys = (np.arange(width) + 0.5) * small_w / width, (np.arange(height) + 0.5) * small_h / height
    return _bilinear(small, *np.meshgrid(xs, ys))


def source_region(frame: np.ndarray, box: np.ndarray, params: BlendParams, t: int,
                  region: tuple[int, int, int, int]) -> np.ndarray:
    """The altered copy of the frame over ``region`` at frame ``t``: zoomed, moved and elastically
    warped about the face, coarsened, colour-shifted.  (h, w, 3) float"""
    x0, y0, x1, y1 = region
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    wander = params.drift * np.sin(2 * np.pi * t / params.drift_period + np.array(params.drift_phase))
    dx, dy = (np.array(params.offset) + wander) * (w, h)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    # The elastic field, bilinear between the coarse grid's points laid over the face box.
    gx = np.clip((xx - x) / max(w, 1.0) * 3.0, 0.0, 3.0)
    gy = np.clip((yy - y) / max(h, 1.0) * 3.0, 0.0, 3.0)
    warp = _bilinear(params.warp, gx + 0.5, gy + 0.5)  # (h, w, 2)
    # Where the source pixel shown at (xx, yy) comes from in the frame.
    src_x = cx + (xx - cx - dx) / params.scale + warp[..., 0] * w
    src_y = cy + (yy - cy - dy) / params.scale + warp[..., 1] * h
    image = _coarse_resample(_bilinear(frame, src_x, src_y), params.downscale)
    grey = image.mean(axis=-1, keepdims=True)
    image = grey + (image - grey) * params.saturation
    image = (image - image.mean()) * params.contrast + image.mean()
    cycle = np.sin(2 * np.pi * t / params.drift_period + params.drift_phase[0])
    return image + np.array(params.channel_shift) + params.brightness + params.colour_drift * cycle


def blend_frame(frame: np.ndarray, box: np.ndarray, params: BlendParams, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` of a video, its face (``box`` x, y, w, h in pixels) self-blended. Pixels where the
    mask is 0 are returned unchanged.  (H, W, 3) uint8 -> (H, W, 3) uint8, mask (H, W) float"""
    height, width = frame.shape[:2]
    mask = blend_mask(box, params, width, height)
    region = _region(box, width, height)
    x0, y0, x1, y1 = region
    source = source_region(frame, box, params, t, region)  # (h, w, 3)
    out = frame.copy()
    target = frame[y0:y1, x0:x1].astype(np.float64)
    alpha = mask[y0:y1, x0:x1, None]
    blended = np.clip(np.round(target + alpha * (source - target)), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(alpha > 0, blended, frame[y0:y1, x0:x1])
    return out, mask


def self_blend_video(frames: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                     strength: float = 1.0) -> np.ndarray:
    """A self-blended fake of a video: one draw of parameters (``draw_params``), applied to each frame
    with that frame's face box.  (T, H, W, 3) uint8, (T, 4) float -> (T, H, W, 3) uint8"""
    params = draw_params(rng, strength)
    return np.stack([blend_frame(frame, box, params, t)[0] for t, (frame, box) in enumerate(zip(frames, boxes))])
