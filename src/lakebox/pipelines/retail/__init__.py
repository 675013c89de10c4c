"""retail: daily CSV drops from 150 stores → raw lake → raw.retail_* → store analytics marts."""
