// Drawing the live overlays on a canvas laid exactly over the picture: dog boxes with track id and
// confidence, other objects, keypoints and skeleton, zones with occupancy, the heat map and (debug)
// motion boxes. Coordinates arrive in source-frame pixels (boxes) or normalised 0..1 (zones).

export const DOG_COLOUR = "#ffd400";     // tests look for this exact colour on the overlay canvas
const OBJECT_COLOUR = "#4fc3f7";
const MOTION_COLOUR = "#ff4fd8";
const ZONE_DEFAULT = "#3ecf7a";

/** Size a canvas's backing store to its CSS box (device pixels) and return the 2D context. */
export function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  return ctx;
}

/** The picture; the canvas's data-frame-ts names the capture time of the frame it shows. */
export function drawPicture(canvas, bitmap, frameTs = null) {
  canvas.dataset.frameTs = bitmap ? frameTs ?? "" : "";
  const ctx = fitCanvas(canvas);
  if (bitmap) ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  else ctx.clearRect(0, 0, canvas.width, canvas.height);
}

export function hexAlpha(hex, alpha) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "") || [0, "3e", "cf", "7a"];
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
}

/**
 * layers: {frame:{w,h}, detection, pose, zones, heatmap, motion, showHeat, showDebug, skeleton, threshold}
 */
export function drawOverlay(canvas, layers) {
  const ctx = fitCanvas(canvas);
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const frame = (layers.detection && layers.detection.frame) || layers.frame || { w: 640, h: 480 };
  const sx = W / frame.w, sy = H / frame.h;
  const ratio = window.devicePixelRatio || 1;

  if (layers.showHeat && layers.heatmap) drawHeat(ctx, W, H, layers.heatmap);
  for (const z of layers.zones || []) drawZone(ctx, W, H, z, ratio);
  if (layers.showDebug && layers.motion) {
    ctx.strokeStyle = MOTION_COLOUR; ctx.lineWidth = 2 * ratio; ctx.setLineDash([6 * ratio, 4 * ratio]);
    const mf = layers.motion.frame || frame;
    for (const b of layers.motion.boxes) ctx.strokeRect(b.x * W / mf.w, b.y * H / mf.h, b.w * W / mf.w, b.h * H / mf.h);
    ctx.setLineDash([]);
  }
  if (layers.pose) drawPose(ctx, layers.pose, W / layers.pose.frame.w, H / layers.pose.frame.h, ratio);
  if (layers.detection) {
    for (const b of layers.detection.boxes) drawBox(ctx, b, sx, sy, ratio);
  }
}

function drawBox(ctx, b, sx, sy, ratio) {
  const dog = b.label === "dog";
  const colour = dog ? DOG_COLOUR : OBJECT_COLOUR;
  const x = Math.round(b.x * sx), y = Math.round(b.y * sy), w = Math.round(b.w * sx), h = Math.round(b.h * sy);
  const lw = Math.max(2, Math.round(3 * ratio));
  ctx.strokeStyle = colour; ctx.lineWidth = lw;
  ctx.strokeRect(x + lw / 2, y + lw / 2, w - lw, h - lw);   // inside the box: its outer edge is the box
  const text = `${dog && b.track_id !== null && b.track_id !== undefined ? "#" + b.track_id + " " : ""}${b.label} ${Math.round(b.confidence * 100)}%`;
  ctx.font = `600 ${Math.round(14 * ratio)}px system-ui, sans-serif`;
  const tw = ctx.measureText(text).width + 8 * ratio, th = 20 * ratio;
  ctx.fillStyle = "rgba(0, 0, 0, 0.65)";                   // label inside the box, so the box edge stays the box
  ctx.fillRect(x + lw, y + lw, Math.min(tw, Math.max(0, w - 2 * lw)), th);
  ctx.fillStyle = "#fff";
  ctx.fillText(text, x + lw + 4 * ratio, y + lw + 15 * ratio, Math.max(0, w - 2 * lw - 8 * ratio));
}

function drawZone(ctx, W, H, z, ratio) {
  if (!z.points || z.points.length < 3) return;
  const colour = z.color || ZONE_DEFAULT;
  ctx.beginPath();
  z.points.forEach(([x, y], i) => (i ? ctx.lineTo(x * W, y * H) : ctx.moveTo(x * W, y * H)));
  ctx.closePath();
  ctx.fillStyle = hexAlpha(colour, z.occupied ? 0.38 : 0.12);
  ctx.fill();
  ctx.strokeStyle = colour; ctx.lineWidth = (z.occupied ? 3 : 2) * ratio;
  ctx.setLineDash(z.occupied ? [] : [8 * ratio, 6 * ratio]);
  ctx.stroke();
  ctx.setLineDash([]);
  const [lx, ly] = z.points.reduce(([a, b], [x, y]) => [a + x / z.points.length, b + y / z.points.length], [0, 0]);
  ctx.font = `600 ${Math.round(14 * ratio)}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.lineWidth = 3 * ratio; ctx.strokeStyle = "#000";
  const label = z.occupied ? `${z.name} · dog here` : z.name;
  ctx.strokeText(label, lx * W, ly * H);
  ctx.fillStyle = "#fff"; ctx.fillText(label, lx * W, ly * H);
  ctx.textAlign = "start";
}

function drawPose(ctx, pose, sx, sy, ratio) {
  const th = pose.keypoint_threshold ?? 0.3;
  for (const p of pose.poses) {
    const k = p.keypoints;
    ctx.strokeStyle = "#7cf3ff"; ctx.lineWidth = 3 * ratio;
    for (const [a, b] of pose.skeleton) {
      if (!k[a] || !k[b] || k[a][2] < th || k[b][2] < th) continue;
      ctx.beginPath(); ctx.moveTo(k[a][0] * sx, k[a][1] * sy); ctx.lineTo(k[b][0] * sx, k[b][1] * sy); ctx.stroke();
    }
    ctx.fillStyle = "#ff7c7c";
    for (const [x, y, c] of k) {
      if (c < th) continue;
      ctx.beginPath(); ctx.arc(x * sx, y * sy, 4.5 * ratio, 0, Math.PI * 2); ctx.fill();
    }
  }
}

export function drawHeat(ctx, W, H, hm) {
  if (!hm.max_seconds) return;
  const cw = W / hm.cols, ch = H / hm.rows;
  for (let r = 0; r < hm.rows; r++) {
    for (let c = 0; c < hm.cols; c++) {
      const v = hm.seconds[r * hm.cols + c] / hm.max_seconds;
      if (v <= 0.01) continue;
      // cold (blue) to hot (red), more opaque where the dog spent longer
      const hue = 240 - 240 * Math.sqrt(v);
      ctx.fillStyle = `hsla(${hue}, 95%, 55%, ${0.15 + 0.45 * v})`;
      ctx.fillRect(c * cw, r * ch, Math.ceil(cw), Math.ceil(ch));
    }
  }
}
