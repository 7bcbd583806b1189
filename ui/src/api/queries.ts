// TanStack Query hooks for the REST data the views share (fetched once, refreshed on demand:
// nothing here polls).
import { useQuery } from '@tanstack/react-query';
import { api } from './client';

export const useNodeDefs = () => useQuery({ queryKey: ['nodes'], queryFn: api.nodes, staleTime: Infinity });
export const usePacketTypes = () => useQuery({ queryKey: ['packets'], queryFn: api.packets, staleTime: Infinity });
export const useOneshotSamples = () => useQuery({ queryKey: ['samples', 'oneshot'], queryFn: api.oneshotSamples, staleTime: 60_000 });
export const useDynamicSamples = () => useQuery({ queryKey: ['samples', 'dynamic'], queryFn: api.dynamicSamples, staleTime: 60_000 });
export const useAudioAssets = () => useQuery({ queryKey: ['assets', 'audio'], queryFn: api.audioAssets, staleTime: 60_000 });
