// A small WebAudio synth for the melody view: each note a triangle wave with a quiet octave above,
// shaped by an attack–decay–sustain–release envelope, through one low-pass filter.

const ATTACK = 0.006; // seconds
const DECAY = 0.18;
const SUSTAIN = 0.55; // of the peak
const RELEASE = 0.12;
const LEAD_IN = 0.06; // seconds between pressing Play and the first step

export class Synth {
  constructor() {
    this.context = null;
    this.voices = [];
    this.started = null; // AudioContext time of step 0
    this.secondsPerStep = 0.125;
    this.duration = 0;
    this.timer = null;
    this.onend = null;
  }

  get playing() {
    return this.started !== null;
  }

  /** The step being played (fractional), or null when not playing. */
  position() {
    if (!this.playing) return null;
    return Math.max(0, (this.context.currentTime - this.started) / this.secondsPerStep);
  }

  setup() {
    if (!this.context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      this.context = new Context();
      this.filter = this.context.createBiquadFilter();
      this.filter.type = "lowpass";
      this.filter.frequency.value = 3200;
      this.master = this.context.createGain();
      this.master.gain.value = 0.8;
      this.filter.connect(this.master).connect(this.context.destination);
    }
    if (this.context.state === "suspended") this.context.resume();
  }

  /**
   * Play `notes` ({start, end, pitch} in steps) lasting `steps` steps at `secondsPerStep`, velocity
   * 1–127; stops what was playing. `onend` runs once it has played to the end (not on stop()).
   */
  play(notes, steps, secondsPerStep, velocity, onend = null) {
    this.stop();
    this.setup();
    const context = this.context;
    this.secondsPerStep = secondsPerStep;
    this.started = context.currentTime + LEAD_IN;
    this.duration = steps * secondsPerStep;
    const peak = 0.28 * (velocity / 127);
    for (const note of notes) {
      const on = this.started + note.start * secondsPerStep;
      const off = this.started + note.end * secondsPerStep;
      const frequency = 440 * 2 ** ((note.pitch - 69) / 12);
      const gain = context.createGain();
      gain.gain.setValueAtTime(0, on);
      gain.gain.linearRampToValueAtTime(peak, on + ATTACK);
      gain.gain.setTargetAtTime(peak * SUSTAIN, on + ATTACK, DECAY / 3);
      gain.gain.setTargetAtTime(0, off, RELEASE / 4);
      gain.connect(this.filter);
      const oscillators = [["triangle", frequency, 1], ["sine", 2 * frequency, 0.18]].map(([type, hz, level]) => {
        const oscillator = context.createOscillator();
        oscillator.type = type;
        oscillator.frequency.value = hz;
        const mix = context.createGain();
        mix.gain.value = level;
        oscillator.connect(mix).connect(gain);
        oscillator.start(on);
        oscillator.stop(off + RELEASE * 2);
        return oscillator;
      });
      this.voices.push({ gain, oscillators });
    }
    this.onend = onend;
    const left = (this.started - context.currentTime + this.duration) * 1000;
    this.timer = setTimeout(() => this.finish(), Math.max(0, left));
    return { notes: notes.length, seconds: this.duration };
  }

  finish() {
    const onend = this.onend;
    this.reset();
    if (onend) onend();
  }

  /** Stop now (a short fade, no click). */
  stop() {
    if (!this.context) return;
    const now = this.context.currentTime;
    for (const { gain, oscillators } of this.voices) {
      gain.gain.cancelScheduledValues(now);
      gain.gain.setTargetAtTime(0, now, 0.015);
      for (const oscillator of oscillators) {
        try {
          oscillator.stop(now + 0.08);
        } catch {
          // already stopped
        }
      }
    }
    this.reset();
  }

  reset() {
    clearTimeout(this.timer);
    this.timer = null;
    this.voices = [];
    this.started = null;
    this.onend = null;
  }
}
