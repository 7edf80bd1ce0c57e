// js_on_load of the breadcrumb and the table: one delegated listener on the component survives
// every re-render; a click on anything carrying data-node drills there, a hovered row is outlined.
element.addEventListener('click', ev => {
  const item = ev.target.closest('[data-node]');
  if (item) trigger('node_click', {node: item.dataset.node});
});
element.addEventListener('mouseover', ev => {
  const item = ev.target.closest('tr[data-node]');
  window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: item ? item.dataset.node : null}));
});
