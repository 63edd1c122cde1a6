// Melodies of a musicvae export as notes and Standard MIDI Files, from the manifest's `decoding`
// section (kind "melody"). No DOM: the page (melody.js) and Node (exports/node/decode.mjs) import
// this same module.
//
// Tokens → notes follows `decoding.rule` (Python: aezoo_musicvae.representation.events_to_notes);
// the file is byte for byte what aezoo_musicvae.midi.write_melody writes through pretty_midi and
// mido: format 1, a timing track (tempo, time signature) and one named track (program change, then
// note on / note on at velocity 0 pairs, sorted as pretty_midi sorts them, running status as mido).

/** Why this module cannot turn the export's decoder output into melodies, or null when it can. */
export function melodyProblem(decoding) {
  if (!decoding || decoding.kind !== "melody") return "its manifest's decoding is not a melody";
  const events = decoding.events ?? {};
  const midi = decoding.midi ?? {};
  const whole = (value) => Number.isInteger(value) && value >= 0;
  for (const key of ["hold", "note_off", "first_note_on", "lowest_pitch", "highest_pitch"]) {
    if (!whole(events[key])) return `its decoding.events.${key} is ${JSON.stringify(events[key])}, not a whole number`;
  }
  for (const key of ["steps", "classes", "steps_per_quarter", "steps_per_bar"]) {
    if (!whole(decoding[key]) || decoding[key] < 1) return `its decoding.${key} is ${JSON.stringify(decoding[key])}`;
  }
  if (!(midi.tempo_qpm > 0)) return `its decoding.midi.tempo_qpm is ${JSON.stringify(midi.tempo_qpm)}`;
  if (!whole(midi.ticks_per_quarter) || midi.ticks_per_quarter < 1 || midi.ticks_per_quarter > 0x7fff) {
    return `its decoding.midi.ticks_per_quarter is ${JSON.stringify(midi.ticks_per_quarter)}`;
  }
  if (!whole(midi.velocity) || midi.velocity < 1 || midi.velocity > 127) return `its decoding.midi.velocity is ${JSON.stringify(midi.velocity)}`;
  if (!whole(midi.program) || midi.program > 127) return `its decoding.midi.program is ${JSON.stringify(midi.program)}`;
  const [numerator, denominator] = decoding.time_signature ?? [4, 4];
  if (!whole(numerator) || !whole(denominator) || !Number.isInteger(Math.log2(denominator))) {
    return `its decoding.time_signature ${JSON.stringify(decoding.time_signature)} is not n/2^k`;
  }
  return null;
}

/** The notes `tokens` play, each `{start, end, pitch}` in steps (`end` exclusive), by `decoding.rule`. */
export function tokensToNotes(tokens, decoding) {
  const { hold, first_note_on: firstOn, lowest_pitch: lowest } = decoding.events;
  const notes = [];
  let current = null; // {start, pitch}
  const events = Array.from(tokens, Number);
  events.forEach((event, step) => {
    if (event === hold) return;
    if (current) notes.push({ start: current.start, end: step, pitch: current.pitch });
    current = event >= firstOn ? { start: step, pitch: lowest + event - firstOn } : null;
  });
  if (current) notes.push({ start: current.start, end: events.length, pitch: current.pitch });
  return notes;
}

/** Several melodies played one after another (melody k from step k · steps), as one list of notes. */
export function pathNotes(melodies, decoding) {
  return melodies.flatMap((tokens, k) =>
    tokensToNotes(tokens, decoding).map((n) => ({ start: n.start + k * tokens.length, end: n.end + k * tokens.length, pitch: n.pitch })),
  );
}

/** Seconds per step: `decoding.midi.seconds_per_step`, else from the tempo. */
export function secondsPerStep(decoding) {
  const midi = decoding.midi;
  return midi.seconds_per_step ?? 60 / midi.tempo_qpm / decoding.steps_per_quarter;
}

// -- the file ---------------------------------------------------------------------------------------

function variableLength(value) {
  const bytes = [value & 0x7f];
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) bytes.unshift((rest & 0x7f) | 0x80);
  return bytes;
}

function chunk(type, body) {
  const length = body.length;
  return [...Array.from(type, (c) => c.charCodeAt(0)), length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255, ...body];
}

/** A track's bytes from events `{tick, bytes, meta}` in order (delta times, mido's running status). */
function trackBytes(events) {
  const out = [];
  let tick = 0;
  let running = null;
  for (const event of events) {
    out.push(...variableLength(event.tick - tick));
    tick = event.tick;
    if (event.meta) {
      out.push(...event.bytes);
      running = null;
    } else {
      const status = event.bytes[0];
      out.push(...(status === running ? event.bytes.slice(1) : event.bytes));
      running = status < 0xf0 ? status : null;
    }
  }
  return chunk("MTrk", out);
}

/** The tempo pretty_midi writes for `qpm` at `resolution` (its float expression, truncated). */
function microsecondsPerQuarter(qpm, resolution) {
  const tickScale = 60.0 / (qpm * resolution);
  return Math.trunc(6e7 / (60.0 / (tickScale * resolution)));
}

/** A Standard MIDI File (Uint8Array) of `notes` (`{start, end, pitch}` in steps), as the Python writer. */
export function midiFile(notes, decoding) {
  const midi = decoding.midi;
  const resolution = midi.ticks_per_quarter;
  const ticksPerStep = resolution / decoding.steps_per_quarter;
  const toTick = (step) => Math.round(step * ticksPerStep);
  const [numerator, denominator] = decoding.time_signature ?? [4, 4];
  const tempo = microsecondsPerQuarter(midi.tempo_qpm, resolution);
  const timing = [
    { tick: 0, meta: true, bytes: [0xff, 0x51, 3, (tempo >>> 16) & 255, (tempo >>> 8) & 255, tempo & 255] },
    { tick: 0, meta: true, bytes: [0xff, 0x58, 4, numerator, Math.log2(denominator), 24, 8] },
  ];
  timing.push({ tick: 1, meta: true, bytes: [0xff, 0x2f, 0] }); // pretty_midi: one tick after the last event

  const channel = 0; // pretty_midi's first channel for the first (non-drum) instrument
  const name = Array.from(midi.track_name ?? "", (c) => c.charCodeAt(0) & 0xff); // latin-1, as mido
  const track = [];
  if (name.length) track.push({ tick: 0, key: 0, meta: true, bytes: [0xff, 0x03, ...variableLength(name.length), ...name] });
  track.push({ tick: 0, key: 6 * 65536, bytes: [0xc0 | channel, midi.program] });
  for (const note of notes) {
    const on = 10 * 65536 + note.pitch * 256;
    track.push({ tick: toTick(note.start), key: on + midi.velocity, bytes: [0x90 | channel, note.pitch, midi.velocity] });
    track.push({ tick: toTick(note.end), key: on, bytes: [0x90 | channel, note.pitch, 0] });
  }
  // pretty_midi's order: by tick, then its secondary key (note on by pitch, then velocity); stable
  const order = track.map((event, index) => ({ event, index }));
  order.sort((a, b) => a.event.tick - b.event.tick || a.event.key - b.event.key || a.index - b.index);
  const sorted = order.map((o) => o.event);
  sorted.push({ tick: sorted[sorted.length - 1].tick + 1, meta: true, bytes: [0xff, 0x2f, 0] });

  const header = chunk("MThd", [0, 1, 0, 2, (resolution >>> 8) & 255, resolution & 255]);
  return Uint8Array.from([...header, ...trackBytes(timing), ...trackBytes(sorted)]);
}

/** The MIDI file of one melody's tokens. */
export function melodyMidi(tokens, decoding) {
  return midiFile(tokensToNotes(tokens, decoding), decoding);
}

/** The MIDI file of several melodies played one after another. */
export function pathMidi(melodies, decoding) {
  return midiFile(pathNotes(melodies, decoding), decoding);
}
