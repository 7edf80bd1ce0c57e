// The hover bridge (js_on_load of #hover-bridge): holds every level's label map (sent once per
// segmentation), outlines the segment under the pointer or of a hovered tree sector on a canvas over
// the photo, and turns keys into events. Nothing here talks to the server except the keyboard trigger.
const hs = window.hierseg = window.hierseg || {};
hs.view = hs.view || null;
function decode() {
  hs.maps = null;
  if (props.value) {
    const data = JSON.parse(props.value);
    hs.width = data.width; hs.height = data.height;
    hs.maps = data.maps.map(runs => {
      const out = new Int32Array(data.width * data.height);
      for (let i = 0, p = 0; i < runs.length; i += 2) { out.fill(runs[i], p, p + runs[i + 1]); p += runs[i + 1]; }
      return out;
    });
  }
  hs.outline(null);
}
function layer() {
  const img = document.querySelector('#overlay img');
  if (!img || !img.naturalWidth) return null;
  let canvas = img.parentElement.querySelector('canvas.hover-outline');
  if (!canvas) {
    canvas = document.createElement('canvas');
    canvas.className = 'hover-outline';
    img.parentElement.style.position = 'relative';
    img.parentElement.appendChild(canvas);
  }
  // The photo is letterboxed inside the img box (object-fit: contain): cover the picture only.
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
  Object.assign(canvas.style, {left: (img.offsetLeft + (img.clientWidth - w) / 2) + 'px',
    top: (img.offsetTop + (img.clientHeight - h) / 2) + 'px', width: w + 'px', height: h + 'px'});
  return canvas;
}
hs.outline = function (node) {
  const canvas = layer();
  if (!canvas) return;
  canvas.dataset.node = node || '';
  const ctx = canvas.getContext('2d');
  if (!node || !hs.maps) { ctx.clearRect(0, 0, canvas.width, canvas.height); return; }
  const [level, index] = node.split(':').map(Number);
  if (level < 0) { ctx.clearRect(0, 0, canvas.width, canvas.height); return; }
  const w = hs.width, h = hs.height, map = hs.maps[level];
  canvas.width = w; canvas.height = h;
  // Two tones, so the outline shows on any colour: a light line just inside the segment, a dark one
  // just outside, each about one screen pixel wide however much the photo is scaled down.
  const band = Math.max(1, Math.round(w / Math.max(1, canvas.getBoundingClientRect().width)));
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let p = 0; p < w * h; p++) if (map[p] === index) {
    const x = p % w, y = (p - x) / w;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  const pixels = ctx.createImageData(w, h), data = pixels.data;
  if (x1 < 0) { ctx.putImageData(pixels, 0, 0); return; }
  x0 = Math.max(0, x0 - band); y0 = Math.max(0, y0 - band); x1 = Math.min(w - 1, x1 + band); y1 = Math.min(h - 1, y1 + band);
  // ring[p]: 1..band for the light band (k-th pixel ring inside the boundary), band+1..2*band for the dark one.
  const inside = p => map[p] === index;
  let front = [];
  const ring = new Uint8Array(w * h);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
    const p = y * w + x;
    if (!inside(p)) continue;
    if (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !inside(p - 1) || !inside(p + 1) || !inside(p - w)
        || !inside(p + w)) { ring[p] = 1; front.push(p); }
  }
  const edge = front.slice();
  // Grow the light band inwards and the dark band outwards, one pixel ring at a time.
  for (let k = 2; k <= band; k++) {
    const next = [];
    for (const p of front) for (const q of [p - 1, p + 1, p - w, p + w])
      if (q >= 0 && q < w * h && !ring[q] && inside(q)) { ring[q] = k; next.push(q); }
    front = next;
  }
  front = [];
  for (const p of edge) for (const q of [p - 1, p + 1, p - w, p + w]) {
    const x = q % w;
    if (q >= 0 && q < w * h && Math.abs(x - p % w) <= 1 && !ring[q] && !inside(q)) { ring[q] = band + 1; front.push(q); }
  }
  for (let k = band + 2; k <= 2 * band; k++) {
    const next = [];
    for (const p of front) for (const q of [p - 1, p + 1, p - w, p + w])
      if (q >= 0 && q < w * h && Math.abs(q % w - p % w) <= 1 && !ring[q] && !inside(q)) { ring[q] = k; next.push(q); }
    front = next;
  }
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
    const p = y * w + x, o = 4 * p;
    if (ring[p] > band) { data[o] = data[o + 1] = data[o + 2] = 0; data[o + 3] = 255; }
    else if (ring[p]) { data[o] = data[o + 1] = data[o + 2] = 255; data[o + 3] = 255; }
    else if (inside(p)) { data[o] = data[o + 1] = data[o + 2] = 255; data[o + 3] = 46; }
  }
  ctx.putImageData(pixels, 0, 0);
};
// The node a click at this point would select: the superpixel under the pointer looked up in the
// click targets of the view shown (computed by explorer.session.click_targets, sent per view).
function nodeUnder(ev) {
  const img = ev.target;
  if (!hs.maps || !hs.targets) return null;
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const left = (img.clientWidth - img.naturalWidth * scale) / 2, top = (img.clientHeight - img.naturalHeight * scale) / 2;
  const fx = (ev.offsetX - left) / (img.naturalWidth * scale), fy = (ev.offsetY - top) / (img.naturalHeight * scale);
  if (fx < 0 || fy < 0 || fx >= 1 || fy >= 1) return null;
  const p = Math.floor(fy * hs.height) * hs.width + Math.floor(fx * hs.width);
  return hs.targets[hs.maps[hs.maps.length - 1][p]] || null;
}
// A click on the photo with Ctrl/Shift/Cmd held adds the segment there to the selection (or takes a member
// out): sent as its own event with the point in the photo's pixels, and kept from the photo's plain click.
function addClick(ev) {
  const img = ev.target;
  if (!(ev.ctrlKey || ev.shiftKey || ev.metaKey) || !img.matches || !img.matches('#overlay img') || !img.naturalWidth) return;
  ev.preventDefault(); ev.stopPropagation();
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const left = (img.clientWidth - img.naturalWidth * scale) / 2, top = (img.clientHeight - img.naturalHeight * scale) / 2;
  const x = (ev.offsetX - left) / scale, y = (ev.offsetY - top) / scale;
  if (x < 0 || y < 0 || x >= img.naturalWidth || y >= img.naturalHeight) return;
  hs.trigger('add_click', {x: x, y: y});
}
if (!hs.wired) {
  hs.wired = true;
  document.addEventListener('click', addClick, true);
  document.addEventListener('mousemove', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(nodeUnder(ev));
  });
  document.addEventListener('mouseout', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(null);
  });
  window.addEventListener('hierseg-hover', ev => hs.outline(ev.detail));
  window.addEventListener('hierseg-view', () => hs.outline(null));
  // The breadcrumb is one scrolling line: keep its end (the selection) in view whenever it is redrawn.
  // Watched from the body, since Gradio may mount the breadcrumb after this script or replace it; and
  // again on the next frame, since a busy page may lay the new line out after the mutation is seen.
  let shownLine = null, shownHTML = '';
  const toEnd = line => { line.scrollLeft = line.scrollWidth; };
  new MutationObserver(() => {
    const line = document.querySelector('#breadcrumb .crumbs');
    if (!line || (line === shownLine && line.innerHTML === shownHTML)) return;
    shownLine = line; shownHTML = line.innerHTML;
    toEnd(line); requestAnimationFrame(() => toEnd(line));
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
  // A control used with the pointer (the level radio, a Display checkbox, a slider, a button) keeps the
  // focus, and the keys below skip focused inputs: let go of it, so Esc and the arrows keep working.
  // A control reached with Tab keeps the focus and its own keys.
  document.addEventListener('pointerup', () => setTimeout(() => {
    const focused = document.activeElement;
    if (focused && focused.matches && focused.matches('input[type=radio], input[type=checkbox], input[type=range], button')) focused.blur();
  }, 0));
  // A photo over the size limit is refused here, before gradio's upload (which would empty the input and
  // leave the old result beside it): the input keeps the photo the result is of, and a toast says why.
  const tooLarge = (files, ev) => {
    const limit = Number((document.querySelector('.hover-bridge') || {}).dataset?.maxMb || 0);
    const big = limit && Array.from(files || []).find(file => file.size > limit * 1024 * 1024);
    if (!big) return false;
    ev.preventDefault(); ev.stopImmediatePropagation();
    hs.trigger('too_large', {name: big.name, mb: big.size / 1048576, limit: limit});
    return true;
  };
  document.addEventListener('change', ev => {
    if (ev.target.matches && ev.target.matches('#input-image input[type=file]') && tooLarge(ev.target.files, ev)) ev.target.value = '';
  }, true);
  document.addEventListener('drop', ev => {
    if (ev.target.closest && ev.target.closest('#input-image') && ev.dataTransfer) tooLarge(ev.dataTransfer.files, ev);
  }, true);
  document.addEventListener('keydown', ev => {
    const target = ev.target;
    if (!hs.maps || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (target.closest && target.closest('input, textarea, select, [contenteditable="true"]')) return;
    const key = {Escape: 'up', Backspace: 'up', ArrowRight: 'next', ArrowDown: 'next',
                 ArrowLeft: 'previous', ArrowUp: 'previous'}[ev.key];
    if (!key) return;
    ev.preventDefault();
    hs.trigger('keyboard', {key: key});
  });
}
hs.trigger = trigger;
decode();
watch('value', decode);
