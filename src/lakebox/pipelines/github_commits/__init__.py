"""The github_commits pipeline: GitHub's list-commits API, a stand-in that serves it offline,
commit analytics and the features of the commit classifier."""
