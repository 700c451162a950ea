/** The editor's keyboard shortcuts, as shown in the help panel (Ctrl is Cmd on a Mac). */
export const SHORTCUTS: Array<[keys: string, action: string]> = [
  ['Ctrl+Z', 'Undo'],
  ['Shift+Ctrl+Z or Ctrl+Y', 'Redo'],
  ['Delete or Backspace', 'Delete the selection'],
  ['Ctrl+C / Ctrl+X / Ctrl+V', 'Copy / cut / paste (also between graphs)'],
  ['Ctrl+D', 'Duplicate the selection'],
  ['Ctrl+A', 'Select all'],
  ['Ctrl+G', 'Put the selection in a frame'],
  ['Shift+A or double-click', 'Search and add a node'],
  ['Shift+L', 'Auto-layout'],
  ['Shift+F', 'Fit the graph in view'],
  ['Ctrl+S', 'Keep this version in the history'],
  ['Arrow keys', 'Move the selected nodes (with a node focused)'],
  ['Tab', 'Move focus between nodes and controls'],
  ['?', 'Show this help'],
];
