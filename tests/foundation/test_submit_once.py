"""``SubmitOnceMixin`` after a daemon crash: a child that was fully launched is reused; a child whose launch the crash
cut short (stored, but no checkpoint, so no broker task can ever run it) is kept, sealed as excepted, and launched
again. The last case is what hung the active-learning daemon-kill test when the kill landed mid-launch."""

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessState
from aiida.engine.processes.builder import ProcessBuilder

from aiida_glassml.workflows.submit_once import INTERRUPTED_LAUNCH, SubmitOnceMixin, is_reusable

pytestmark = pytest.mark.usefixtures('aiida_profile_clean')


class Launcher:
    def __init__(self, node):
        self.node, self.reports, self.launched = node, [], []

    def report(self, message):
        self.reports.append(message)

    def submit(self, process, inputs=None, **kwargs):
        metadata = process.metadata if isinstance(process, ProcessBuilder) else kwargs['metadata']
        self.launched.append(metadata['call_link_label'])
        return 'new launch'


class Step(SubmitOnceMixin, Launcher):
    pass


def child_of(parent, label, state, checkpoint=None):
    child = orm.WorkflowNode()
    child.base.links.add_incoming(parent, link_type=LinkType.CALL_WORK, link_label=label)
    child.store()
    child.set_process_state(state)
    if checkpoint:
        child.set_checkpoint(checkpoint)
    return child


@pytest.fixture
def parent():
    node = orm.WorkflowNode().store()
    node.set_process_state(ProcessState.WAITING)
    return node


def test_a_child_with_a_checkpoint_is_reused(parent):
    child = child_of(parent, 'explore_0', ProcessState.WAITING, checkpoint='state')
    step = Step(parent)
    assert step.submit(object, metadata={'call_link_label': 'explore_0'}) == child
    assert step.launched == [] and 'waiting for it' in step.reports[0]


def test_a_finished_child_is_reused(parent):
    child = child_of(parent, 'explore_0', ProcessState.FINISHED)
    step = Step(parent)
    assert step.submit(object, metadata={'call_link_label': 'explore_0'}) == child


def test_a_launch_cut_short_is_sealed_and_launched_again(parent):
    child = child_of(parent, 'explore_1', ProcessState.CREATED)
    assert not is_reusable(child)
    step = Step(parent)
    assert step.submit(object, metadata={'call_link_label': 'explore_1'}) == 'new launch'
    assert step.launched == ['explore_1'] and 'cut short' in step.reports[0]
    child = orm.load_node(child.pk)
    assert child.is_sealed and child.is_excepted and child.exception == INTERRUPTED_LAUNCH


def test_an_excepted_child_is_launched_again_and_kept(parent):
    child = child_of(parent, 'explore_2', ProcessState.EXCEPTED)
    step = Step(parent)
    assert step.submit(object, metadata={'call_link_label': 'explore_2'}) == 'new launch'
    assert orm.load_node(child.pk).is_sealed


def test_unlabelled_children_are_always_launched(parent):
    child_of(parent, 'CALL', ProcessState.FINISHED)
    step = Step(parent)
    assert step.submit(object, metadata={'call_link_label': 'CALL'}) == 'new launch'


def test_a_builder_carries_its_label(parent):
    """`self.submit(builder)` (the study, the benchmark) names its child in the builder's metadata, not in kwargs."""
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    child = child_of(parent, 'analysis_main', ProcessState.WAITING, checkpoint='state')
    builder = GlassAnalysisWorkChain.get_builder()
    builder.metadata.call_link_label = 'analysis_main'
    step = Step(parent)
    assert step.submit(builder) == child
    assert step.launched == []
    other = GlassAnalysisWorkChain.get_builder()
    other.metadata.call_link_label = 'analysis_other'
    assert step.submit(other) == 'new launch' and step.launched == ['analysis_other']
