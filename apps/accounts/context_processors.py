"""What templates need to offer Firebase sign-in."""
from django.conf import settings

from apps.accounts import firebase as firebase_app

# The Firebase JS SDK release the sign-in page loads from Google's CDN (www.gstatic.com/firebasejs/).
FIREBASE_JS_SDK_VERSION = "10.12.1"


def firebase(request) -> dict:
    """The public Firebase web config; these values are meant to be shown to browsers, none is a secret."""
    enabled = firebase_app.is_enabled()
    project_id = settings.FIREBASE_PROJECT_ID or ""
    emulator_host = firebase_app.emulator_host() if enabled else ""
    return {
        "firebase": {
            "enabled": enabled,
            "project_id": project_id,
            "api_key": settings.FIREBASE_API_KEY or "",
            "auth_domain": settings.FIREBASE_AUTH_DOMAIN or (f"{project_id}.firebaseapp.com" if project_id else ""),
            "emulator_url": f"http://{emulator_host}" if emulator_host else "",
            "sdk_version": FIREBASE_JS_SDK_VERSION,
        }
    }
