import sys
from pathlib import Path

import freezegun

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# freezegun walks every loaded module's attributes; the kubernetes client builds its
# pydantic models lazily on attribute access, which fails under a fake datetime.
freezegun.configure(extend_ignore_list=["kubernetes"])
