// js_on_load of the breadcrumb and the table: one delegated listener on the component survives
// every re-render; a click on anything carrying data-node drills there (with Ctrl/Shift/Cmd held: adds it to
// the selection or takes it out), a hovered row is outlined.
element.addEventListener('click', ev => {
  const item = ev.target.closest('[data-node]');
  if (item) trigger('node_click', {node: item.dataset.node, add: ev.ctrlKey || ev.shiftKey || ev.metaKey});
});
element.addEventListener('mouseover', ev => {
  const item = ev.target.closest('tr[data-node]');
  window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: item ? item.dataset.node : null}));
});
