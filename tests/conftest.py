from tests.db_fixtures import *  # noqa
