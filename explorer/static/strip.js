// js_on_load of #level-strip: a thumbnail click sets the level; the current level is marked here
// (the strip is sent once per segmentation, the level changes with every view).
const hs = window.hierseg = window.hierseg || {};
function mark() {
  const level = hs.view ? String(hs.view.level) : null;
  element.querySelectorAll('[data-level]').forEach(b => b.classList.toggle('current', b.dataset.level === level));
}
element.addEventListener('click', ev => {
  const item = ev.target.closest('[data-level]');
  if (item) trigger('level_click', {level: Number(item.dataset.level)});
});
window.addEventListener('hierseg-view', mark);
watch('value', () => requestAnimationFrame(mark));
