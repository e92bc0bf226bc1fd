"""Issue 9 item 12: one member's rejected edits may not keep spending everyone's shared image rate."""

from __future__ import annotations

from emulators.modelhub import Fault
from tests.helpers import moderator, picture, told, used

POLICY = Fault(
    status=400,
    body={"error": {"message": "Request rejected by the safety system", "code": "content_policy_violation"}},
)


async def rejected_edit(stack, count: int = 1) -> str:
    stack.hub.inject(POLICY)
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "nope", "size": "64x64", "count": count})
    return await told(record, "content policy rejected")


async def test_repeated_rejections_cool_a_member_down_and_moderators_see_and_forgive_it(stack):
    for _ in range(3):  # the rule: three rejected edits within ten minutes
        await rejected_edit(stack)
    assert len(stack.hub.requests) == 3 and await used(stack) == 0  # rejected edits cost the member nothing

    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine now", "size": "64x64"})
    said = await told(record, "The Model Hub refused your last 3 edits")
    assert "(3 pictures), which still cost everyone's shared image rate; you can start the next edit <t:" in said
    assert said.endswith(":R>. Nothing was charged.")
    assert len(stack.hub.requests) == 3  # refused before anything was downloaded or sent upstream
    assert len(stack.discord.cdn_hits) == 3

    shown = await moderator(stack, "show")
    member_id = stack.discord.member["id"]
    assert f"<@{member_id}>: cooling down until <t:" in shown and "; refused: 3 edits (3 pictures)" in shown

    await moderator(stack, "reset", {"member": stack.discord.member})
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine now", "size": "64x64"})
    await told(record, "Done")
    assert len(stack.hub.requests) == 4 and await used(stack) == 1
