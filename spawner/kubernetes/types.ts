/**
 * The Kubernetes backend's own types: its configuration section and the references to one
 * user's cluster that a launch carries.
 */
import type { Config } from '../../config/schema.ts';

/** The `kubernetes` section of the configuration. */
export type KubernetesConfig = Config['kubernetes'];

/** Which cluster an object belongs to. */
export interface ClusterRef {
  /** The GitHub login, as the hub knows it. */
  login: string;
  /** `safeName(login)`: label-safe. */
  safeLogin: string;
  namespace: string;
}

/** What a launch adds to the reference: everything the pods need. */
export interface LaunchSpec extends ClusterRef {
  workers: number;
  /** `/user/{login}/` */
  baseUrl: string;
  /** Random per launch: see `LABEL_LAUNCH` in labels.ts. */
  launchId: string;
}
