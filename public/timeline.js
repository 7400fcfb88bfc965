// The live timeline: one lane per task and run, a mark for every chunk received.

const SVG = 'http://www.w3.org/2000/svg';
const LANE = 18;
const LABEL = 150;
const WIDTH = 800;

export class Timeline {
  constructor(svg) {
    this.svg = svg;
    this.lanes = [];       // { key, label, run }
    this.marks = [];       // { lane, t, bytes }
    this.maxT = 1;
  }

  reset(lanes) {
    this.lanes = lanes;
    this.marks = [];
    this.maxT = 1;
    this.draw();
  }

  add(laneKey, t, bytes) {
    const lane = this.lanes.findIndex((l) => l.key === laneKey);
    if (lane < 0) return;
    this.marks.push({ lane, t, bytes });
    if (t > this.maxT) this.maxT = Math.ceil(t);
    this.scheduleDraw();
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  draw() {
    const height = Math.max(40, this.lanes.length * LANE + 24);
    this.svg.setAttribute('viewBox', `0 0 ${WIDTH} ${height}`);
    this.svg.style.height = `${height}px`;
    this.svg.replaceChildren();
    const scale = (WIDTH - LABEL - 10) / this.maxT;
    this.lanes.forEach((lane, index) => {
      const y = index * LANE;
      const text = document.createElementNS(SVG, 'text');
      text.setAttribute('x', 4);
      text.setAttribute('y', y + 13);
      text.setAttribute('class', `lane-label ${lane.run}`);
      text.textContent = lane.label;
      this.svg.append(text);
      const line = document.createElementNS(SVG, 'line');
      line.setAttribute('x1', LABEL); line.setAttribute('x2', WIDTH - 10);
      line.setAttribute('y1', y + 9); line.setAttribute('y2', y + 9);
      line.setAttribute('class', 'lane-line');
      this.svg.append(line);
    });
    for (const mark of this.marks) {
      const rect = document.createElementNS(SVG, 'rect');
      rect.setAttribute('x', LABEL + mark.t * scale);
      rect.setAttribute('y', mark.lane * LANE + 3);
      rect.setAttribute('width', 2);
      rect.setAttribute('height', 12);
      rect.setAttribute('class', `mark ${this.lanes[mark.lane].run}`);
      this.svg.append(rect);
    }
    const axisY = this.lanes.length * LANE + 16;
    for (let s = 0; s <= this.maxT; s += Math.max(1, Math.round(this.maxT / 8))) {
      const tick = document.createElementNS(SVG, 'text');
      tick.setAttribute('x', LABEL + s * scale);
      tick.setAttribute('y', axisY);
      tick.setAttribute('class', 'tick');
      tick.textContent = `${s}s`;
      this.svg.append(tick);
    }
  }
}
