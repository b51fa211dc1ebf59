import { LabIcon } from '@jupyterlab/ui-components';

import environmentsSvgStr from '../style/icons/environments.svg';

/**
 * The jupyter-repro environments icon: a box, used for the sidebar tab.
 */
export const environmentsIcon = new LabIcon({
  name: 'jupyter-repro:environments',
  svgstr: environmentsSvgStr
});
