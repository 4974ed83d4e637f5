// The home's devices as the screens show them: this device and its peers (store.peers, from get_peers and
// `peers` messages) in one shape, where the dog is now, and one day's analytics summed over devices.
// Pure functions of what the store holds; the store stays the one writer.

/** A peer's state after one of its events (a later `peers` message replaces it: that is newer). The keys are
 *  the device's own (its retained MQTT `state`, as get_state names them: presence, zones_occupied …). */
export function peerState(state, m) {
  const s = { ...(state || {}) }, d = m.data || {};
  switch (m.event_type) {
    case "dog_detected": s.presence = true; s.present_since = m.ts; break;
    case "dog_left": s.presence = false; s.present_since = null; s.absent_since = m.ts; break;
    case "sit": case "stand": case "lie": s.posture = d.posture; break;
    case "zone_enter": s.zones_occupied = [...new Set([...(s.zones_occupied || []), d.zone])]; break;
    case "zone_exit": s.zones_occupied = (s.zones_occupied || []).filter((z) => z !== d.zone); break;
    default: return null;
  }
  return s;
}

/** One row per device, this one first: {id, name, self, online, present, since, lastSeen, posture, zones, health}.
 *  `online` is true/false, or null while unknown (the broker is down); `health` "ok", "degraded" or null. */
export function devices(store) {
  const own = store.info ? store.info.device_id : null;
  const s = store.state, rows = [];
  if (own) {
    rows.push({
      id: own, name: store.nameOf(own), self: true, online: store.online,
      present: s.presence === true ? true : s.presence === false ? false : null,
      since: s.presence ? s.present_since || store.lastDog.get(own) || null : null,
      lastSeen: Math.max(store.lastDog.get(own) || 0, s.absent_since || 0, s.present_since || 0) || null,
      posture: s.posture || null, zones: s.zones_occupied || [],
      health: !store.online ? null : store.health.camera === false ? "degraded" : "ok",
    });
  }
  const peers = [...store.peers.values()].sort((a, b) => String(a.name || a.device_id).localeCompare(String(b.name || b.device_id)));
  for (const p of peers) {
    const ps = p.state || {};
    rows.push({
      id: p.device_id, name: p.name || p.device_id, self: false, online: p.online ?? null,
      present: ps.presence === true ? true : ps.presence === false ? false : null,
      since: ps.presence ? ps.present_since || store.lastDog.get(p.device_id) || null : null,
      lastSeen: Math.max(store.lastDog.get(p.device_id) || 0, ps.absent_since || 0, ps.present_since || 0) || null,
      posture: ps.posture || null, zones: Array.isArray(ps.zones_occupied) ? ps.zones_occupied : [],
      health: p.health ?? null,
    });
  }
  return rows;
}

/** Where the dog is: the device that sees it now (the newest arrival when several do), else the one that saw
 *  it last. {device, present, ts} or null when no device has seen it. */
export function whereIsTheDog(rows) {
  const here = rows.filter((r) => r.present && r.online !== false);
  if (here.length) {
    const best = here.reduce((a, b) => ((b.since || 0) > (a.since || 0) ? b : a));
    return { device: best, present: true, ts: best.since };
  }
  const seen = rows.filter((r) => r.lastSeen);
  if (!seen.length) return null;
  const best = seen.reduce((a, b) => (b.lastSeen > a.lastSeen ? b : a));
  return { device: best, present: false, ts: best.lastSeen };
}

/** One day's figures of several devices as one: minutes and counts added; zones keep their device's name
 *  (two cameras may both have a "bed"). `parts` = [{name, a}] with `a` an AnalyticsDay. */
export function sumAnalytics(day, parts) {
  const out = { day, posture_minutes: {}, zone_minutes: {}, zone_visits: {}, activity_minutes: 0, event_counts: {} };
  const add = (into, key, v) => { into[key] = (into[key] || 0) + (v || 0); };
  for (const { name, a } of parts) {
    for (const [k, v] of Object.entries(a.posture_minutes || {})) add(out.posture_minutes, k, v);
    for (const [k, v] of Object.entries(a.zone_minutes || {})) add(out.zone_minutes, `${name} · ${k}`, v);
    for (const [k, v] of Object.entries(a.zone_visits || {})) add(out.zone_visits, `${name} · ${k}`, v);
    for (const [k, v] of Object.entries(a.event_counts || {})) add(out.event_counts, k, v);
    out.activity_minutes += a.activity_minutes || 0;
  }
  return out;
}
