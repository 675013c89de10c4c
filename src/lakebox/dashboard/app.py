"""The dashboard's entry point, run by `lakebox dashboard` (streamlit run app.py).

Pages are files (beside this one, or in the pipelines' folders), so each renders on its own in
tests (AppTest.switch_page). A page's url path is its pipeline's name; it is recorded in the
session before the page runs, so one file can serve several pipelines (the declarative page).
A warehouse that is busy or unreachable shows as an error box, never a stack trace.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lakebox.dashboard.data import configured_warehouse
from lakebox.dashboard.layout import SHOWN_PAGE
from lakebox.errors import LakeboxError
from lakebox.pipelines import dashboard_pages
from lakebox.settings import redact

HERE = Path(__file__).parent

st.set_page_config(page_title="lakebox", page_icon=":material/dataset:", layout="wide")

pages = [
    *(st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in dashboard_pages()),
    st.Page(HERE / "platform_page.py", title="Platform", icon=":material/monitor_heart:", url_path="platform"),
    st.Page(HERE / "models_page.py", title="Models", icon=":material/model_training:", url_path="models"),
    st.Page(HERE.parent / "observability" / "catalog_page.py", title="Catalog", icon=":material/account_tree:",
            url_path="catalog"),
]
opening = pages[0]  # dashboard_pages() puts the pipelines' default page first


def _open_default_page() -> None:
    st.switch_page(opening)


# Streamlit serves its default page at "/" and nowhere else, so the default is a hidden page
# that switches to the opening one: `/` and `/retail` both show Retail.
navigation = st.navigation([st.Page(_open_default_page, title=opening.title, url_path="home", default=True,
                                    visibility="hidden"), *pages])

try:
    with st.sidebar:
        st.caption(f"Warehouse: `{configured_warehouse().describe()}`")
        if st.button("Refresh data", icon=":material/refresh:"):
            st.cache_data.clear()
    st.session_state[SHOWN_PAGE] = navigation.url_path
    navigation.run()
except LakeboxError as exc:
    st.error(redact(str(exc)), icon=":material/error:")
