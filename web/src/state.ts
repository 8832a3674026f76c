// Shared console state: the API client, the session, the loaded services.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { Api, Session } from './api';

export interface ConsoleState {
  api: Api;
  session: Session;
  services: Set<string>; // services served now (kernel and modules)
  refreshModules: () => Promise<void>;
}

export const api = new Api();
export const ConsoleContext = createContext<ConsoleState | null>(null);

export function useConsole(): ConsoleState {
  const state = useContext(ConsoleContext);
  if (!state) throw new Error('useConsole outside the console');
  return state;
}
