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
  const pixels = ctx.createImageData(w, h), data = pixels.data;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x;
    if (map[p] !== index) continue;
    const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || map[p - 1] !== index || map[p + 1] !== index
      || map[p - w] !== index || map[p + w] !== index;
    const o = 4 * p;
    if (edge) { data[o] = 255; data[o + 1] = 235; data[o + 2] = 59; data[o + 3] = 255; }
    else { data[o] = data[o + 1] = data[o + 2] = 255; data[o + 3] = 46; }
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
if (!hs.wired) {
  hs.wired = true;
  document.addEventListener('mousemove', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(nodeUnder(ev));
  });
  document.addEventListener('mouseout', ev => {
    if (ev.target.matches && ev.target.matches('#overlay img')) hs.outline(null);
  });
  window.addEventListener('hierseg-hover', ev => hs.outline(ev.detail));
  window.addEventListener('hierseg-view', () => hs.outline(null));
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
