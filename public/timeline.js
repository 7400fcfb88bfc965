// The live timeline: one lane per task and run (a mark per chunk, a pale bar per wait in connect/recv), and for
// async one lane for the loop's wake-ups. Drawn at the element's own pixel width, so text keeps its size on a phone.

const SVG = 'http://www.w3.org/2000/svg';
const LANE = 20;
const RIGHT = 30;   // room for the last tick's label

export class Timeline {
  /// `words(key)` gives the page's words (a mode's name, the loop lane's label) in its current language.
  constructor(svg, words) {
    this.svg = svg;
    this.words = words;
    this.lanes = [];       // { key, run, task } or { key, run, loop: true }
    this.marks = [];       // { lane, t, bytes }
    this.waits = [];       // { lane, t, seconds }
    this.wakes = [];       // { lane, t, ready, bytes }
    this.maxT = 1;
    new ResizeObserver(() => this.scheduleDraw()).observe(svg);
  }

  reset(lanes) {
    this.lanes = lanes;
    this.marks = [];
    this.waits = [];
    this.wakes = [];
    this.maxT = 1;
    this.draw();
  }

  laneIndex(key) { return this.lanes.findIndex((l) => l.key === key); }

  grow(t) {
    if (t > this.maxT) this.maxT = Math.ceil(t);
    this.scheduleDraw();
  }

  add(laneKey, t, bytes) {
    const lane = this.laneIndex(laneKey);
    if (lane < 0) return;
    this.marks.push({ lane, t, bytes });
    this.grow(t);
  }

  addWait(laneKey, t, seconds) {
    const lane = this.laneIndex(laneKey);
    if (lane < 0) return;
    this.waits.push({ lane, t, seconds });
    this.grow(t + seconds);
  }

  addWake(laneKey, t, ready, bytes) {
    const lane = this.laneIndex(laneKey);
    if (lane < 0) return;
    this.wakes.push({ lane, t, ready, bytes });
    this.grow(t);
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    this.svg.append(node);
    return node;
  }

  draw() {
    const width = Math.max(280, Math.round(this.svg.clientWidth || 800));
    const label = width < 560 ? 86 : 130;
    const height = Math.max(40, this.lanes.length * LANE + 26);
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.style.height = `${height}px`;
    this.svg.replaceChildren();
    const scale = (width - label - RIGHT) / this.maxT;
    const x = (t) => label + t * scale;
    this.lanes.forEach((lane, index) => {
      const y = index * LANE;
      const text = lane.loop ? this.words('laneLoop') : `${this.words(lane.run)} · ${lane.task}`;
      this.element('text', { x: 4, y: y + 14, class: `lane-label ${lane.run}` }, text);
      this.element('line', { x1: label, x2: width - RIGHT, y1: y + 10, y2: y + 10, class: 'lane-line' });
    });
    for (const wait of this.waits) {
      // A strip under the lane's marks: where a thread sat in connect or recv.
      this.element('rect', { x: x(wait.t), y: wait.lane * LANE + 16, width: Math.max(0.5, wait.seconds * scale), height: 3,
        class: `wait ${this.lanes[wait.lane].run}` });
    }
    for (const mark of this.marks) {
      this.element('rect', { x: x(mark.t), y: mark.lane * LANE + 2, width: 2, height: 13, class: `mark ${this.lanes[mark.lane].run}` });
    }
    for (const wake of this.wakes) {
      // Taller for more sockets ready in one wake-up.
      const tall = 5 + 4 * Math.min(wake.ready, 3);
      this.element('rect', { x: x(wake.t), y: wake.lane * LANE + 17 - tall, width: 1.5, height: tall, class: 'wake',
        'data-bytes': wake.bytes, 'data-ready': wake.ready });
    }
    const axisY = this.lanes.length * LANE + 18;
    const step = Math.max(1, Math.ceil(this.maxT / Math.max(2, Math.floor((width - label) / 60))));
    for (let s = 0; s <= this.maxT; s += step) {
      this.element('text', { x: x(s), y: axisY, class: 'tick', 'text-anchor': 'middle' }, `${s}s`);
    }
  }
}
