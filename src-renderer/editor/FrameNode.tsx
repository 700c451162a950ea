/** A frame (group): a titled, resizable rectangle behind nodes; the nodes inside move with it. */
import { type Node, type NodeProps, NodeResizer } from '@xyflow/react';
import { memo, useContext, useState } from 'react';
import { EditorLookupsContext } from './editor-context.ts';

export interface FrameData extends Record<string, unknown> {
  title: string;
}

export type FrameFlowNode = Node<FrameData, 'frame'>;

function FrameView({ id, data, selected }: NodeProps<FrameFlowNode>) {
  const { renameFrame } = useContext(EditorLookupsContext);
  const [editing, setEditing] = useState(false);
  return (
    <div className={`frame${selected ? ' selected' : ''}`}>
      <NodeResizer isVisible={selected} minWidth={160} minHeight={100} />
      {editing ? (
        <input
          className="frame-title-input nodrag"
          aria-label="Frame title"
          defaultValue={data.title}
          // biome-ignore lint/a11y/noAutofocus: the user just asked to rename the frame.
          autoFocus
          onBlur={(e) => {
            setEditing(false);
            if (e.target.value.trim() && e.target.value !== data.title)
              renameFrame(id, e.target.value.trim());
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') e.currentTarget.blur();
            if (e.key === 'Escape') setEditing(false);
          }}
        />
      ) : (
        <button
          type="button"
          className="frame-title nodrag"
          onDoubleClick={() => setEditing(true)}
          onKeyDown={(e) => e.key === 'F2' && setEditing(true)}
          aria-label={`Frame ${data.title} (double-click or F2 to rename)`}
        >
          {data.title}
        </button>
      )}
    </div>
  );
}

export const FrameNode = memo(FrameView);
