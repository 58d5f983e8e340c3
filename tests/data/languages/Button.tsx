import React from 'react';

interface Props { label: string }

export function Button({ label }: Props) {
  return <button onClick={() => track(label)}>{label}</button>;
}
