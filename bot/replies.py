"""Every sentence the bot says, in one place, so they stay short, true and consistent."""
from __future__ import annotations

from service.attention_maps import PHOTO_GONE_REPLY
from service.image_formats import ACCEPTED_FORMATS_SENTENCE, UNSUPPORTED_FORMAT_REPLY

START = (
    "Hi! Send me a photo and I'll describe it in a sentence.\n\n"
    "Under each description you'll find 👍 👎 ✏️ and 🔍: tell me if I got it right, write a "
    "better description, or see where I looked for each word. Photos you rate or correct, with "
    "your rating or correction, may be used to improve me.\n\n"
    "/help shows what I can do; /forget deletes everything I have about you."
)
HELP = (
    "Send a photo (or an image as a file, up to {max_mb} MB) and I'll reply with a description. "
    f"{ACCEPTED_FORMATS_SENTENCE}\n"
    "👍 / 👎 rate a description (you can change your mind), ✏️ lets you write a better one, "
    "🔍 shows where I looked for each word.\n"
    "/forget deletes your photos, requests, ratings and corrections (it asks first).\n"
    "You can send up to {per_minute} photos a minute."
)
HINT = "Send me a photo and I'll describe it. /help says more."
GROUP_START = (
    "Hi! In this group I describe photos when asked: reply /caption to a photo, or mention me in "
    "a photo's caption. An admin can send /auto on to have every photo described.\n\n"
    "Under each description, 👍 👎 and ✏️ work for every member. /help says more."
)
GROUP_HELP = (
    "Reply /caption to a photo (or an image sent as a file, up to {max_mb} MB), or mention me in "
    "its caption, and I'll reply with a description. "
    f"{ACCEPTED_FORMATS_SENTENCE}\n"
    "/auto on makes me describe every photo in this group, /auto off stops it (admins only).\n"
    "👍 / 👎 rate a description, ✏️ lets you write a better one: your next message here is taken as it.\n"
    "/forget deletes your photos, requests, ratings and corrections (it asks first)."
)
GROUP_HINT = "Reply /caption to a photo and I'll describe it. /help says more."
CAPTION_USAGE = "Send /caption as a reply to a photo (or an image file), and I'll describe that photo."
ALREADY_CAPTIONED = "I've described this photo already: my description is my reply to it."
ALREADY_CAPTIONING = "I'm describing this photo already: the description is on its way."
AUTO_GROUPS_ONLY = "/auto is for groups: here in our chat I describe every photo you send anyway."
AUTO_USAGE = "Automatic descriptions are {state} in this group. /auto on or /auto off changes it (admins only)."
AUTO_ADMINS_ONLY = "Sorry, only this group's admins can turn automatic descriptions on or off."
AUTO_ON = "Done: I'll describe every photo sent to this group. /auto off stops it."
AUTO_OFF = "Done: I'll describe photos here only when asked (/caption as a reply, or a mention)."
RATE_LIMITED = "That's a lot of photos at once! Please wait a minute and send it again."
TOO_BIG = "That file is too big for me: I can fetch files up to {max_mb} MB. Please send a smaller one."
UNSUPPORTED = UNSUPPORTED_FORMAT_REPLY
STORAGE_DOWN = "I can't reach my storage right now. Please try again in a minute."
UNEXPECTED = "Sorry, something went wrong on my side. Please try again."
FORGET_QUESTION = (
    "Delete everything I keep about you: your photos, requests, ratings and corrections? "
    "This can't be undone."
)
FORGET_KEPT = "Kept: I deleted nothing."
FORGET_EXPIRED = "This question has expired and I deleted nothing. Send /forget again if you want to."
FORGOTTEN = "Done: I deleted {photos} and everything else I kept about you."
FORGOTTEN_NO_PHOTOS = "Done: I deleted everything I kept about you (no photos were stored)."
NOTHING_TO_FORGET = "Done: nothing was stored about you, so there was nothing to delete."

STALE_BUTTON = "Sorry, this button no longer works. Send the photo again for a fresh description."
RATED = {"up": "Thanks for the 👍!", "down": "Thanks, noted 👎. ✏️ lets you write a better one."}
CORRECTION_PROMPT = "What would be a better description? Send it as your next message, or press Cancel."
GROUP_CORRECTION_PROMPT = (
    "{name}, what would be a better description? Send it as your next message in this group, or press Cancel."
)
PROMPT_OF_ANOTHER_MEMBER = "Only the member who pressed ✏️ can answer or cancel this question, while it is open."
PROMPT_NOT_OPENED = "I can't reach my storage right now, so I couldn't ask for a better description. Please press ✏️ again in a minute."
CORRECTION_SAVED = "Thank you! I saved your description; it will help me learn."
CORRECTION_EMPTY = "That looks empty. Send a short description, please."
CORRECTION_TOO_LONG = "Please keep it under {limit} characters."
CORRECTION_EXPIRED = "That question has expired. Press ✏️ under a description again."
CORRECTION_RATE_LIMITED = "That's a lot of descriptions at once! Please wait a minute and send it again."
BUTTONS_RATE_LIMITED = "Slow down a little, please: try that button again in a minute."
TEXTS_RATE_LIMITED = "That's a lot of messages at once! I'll read new ones again in a minute."
CORRECTION_CANCELLED = "Cancelled: no new description for this photo."
ATTENTION_QUEUED = "Drawing where I looked for each word; the picture follows in a moment."
ATTENTION_UNDER_WAY = "I'm still drawing it; the picture follows in a moment."
ATTENTION_PHOTO_GONE = PHOTO_GONE_REPLY
PROMPT_CLOSED = "This question is already closed; there is nothing to cancel."

ADMINS_ONLY = "Sorry, only the bot's admins can do that."
RETRAIN_QUEUED = "Retraining is queued on the trainer (job {job_id}). I'll keep serving the current model meanwhile."


def megabytes(size: int) -> int:
    return size // (1024 * 1024)


def counted(count: int, singular: str, plural: str) -> str:
    """"1 photo", "3 photos": a number with the noun that agrees with it."""
    return f"{count} {singular if count == 1 else plural}"


def forgotten(anything: bool, photos: int) -> str:
    """What /forget deleted, in words."""
    if not anything:
        return NOTHING_TO_FORGET
    if photos == 0:
        return FORGOTTEN_NO_PHOTOS
    return FORGOTTEN.format(photos=counted(photos, "photo", "photos"))
RETRAIN_BUSY = (
    "A retraining is already {state} (asked by {requested_by} at {since} UTC){progress}. "
    "I won't queue another; /models shows the versions."
)
RETRAIN_NOT_QUEUED = "I couldn't queue the retraining: my storage is unreachable. Please try again in a minute."
ROLLED_BACK = "Rolled back: {version} is the active model again (was {previous}). Workers switch before their next job."
ALREADY_ACTIVE = "{version} is already the active model."
NOTHING_TO_ROLL_BACK = "There is no earlier model version to go back to."
ACTIVATION_REFUSED = "I can't activate that: {reason}."

CANARY_USAGE = "Usage: /canary VERSION PERCENT, e.g. /canary {example} 20 (a share of photos from 1 to 99 %)."
CANARY_STARTED = (
    "{version} is a canary now: it captions {percent:.0f} % of photos, {active} the rest. After {min_ratings} "
    "ratings on each I promote it, unless its 👍 share is significantly lower (then it ends). "
    "/promote or /rollback decide now."
)
CANARY_STANDING = "Canary {version} on {percent:.0f} % of photos beside {active}:\n{numbers}"
NO_CANARY = "No canary is running. /canary VERSION PERCENT starts one."
NOTHING_TO_PROMOTE = "No canary is running, so there is nothing to promote."
CANARY_PROMOTED = "Promoted: {version} is the active model now (was {previous}). Workers switch before their next job."
CANARY_ENDED = "Canary ended: {version} captions nothing now; {active} captions every photo."
CANARY_SETTLED_PROMOTED = "Canary {version} promoted: it is the active model now (was {active}).\n{numbers}"
CANARY_SETTLED_ENDED = "Canary {version} ended: {active} stays the active model.\n{numbers}"
REPORT_QUEUED = "Preparing the feedback report on the trainer; the chart follows in a moment."
REPORT_AFTER_RETRAINING = "A retraining is using the trainer; the feedback report follows when it ends."
REPORT_NOT_QUEUED = "I couldn't queue the report: my storage is unreachable. Please try again in a minute."
