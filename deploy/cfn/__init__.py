"""Render the CloudFormation templates in deploy/cloudformation/ from the topology and the settings classes.

    python -m deploy.cfn render   # rewrite deploy/cloudformation/*.yaml
    python -m deploy.cfn check    # exit 1 if a committed template differs from what render would write

Queues, DLQs, redrive, the bucket's lifecycle and every task role's permissions come from
`shared.topology.TOPOLOGY`; each container's environment comes from its service's settings class
(deploy/catalog.py). Edit those, not the YAML.
"""

from deploy.cfn.render import main, render_all

__all__ = ["main", "render_all"]
